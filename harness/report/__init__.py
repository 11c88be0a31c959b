"""Verdict and records drawn for people: report.md and the terminal summary (text), report.html (collect ->
figures -> page), and exports (CSV, TensorBoard). Formats; decides nothing."""
