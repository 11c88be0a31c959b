"""scripts/setup.sh takes the Debian mirror for Caffe's source package from the machine's own apt sources."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEBIAN_KEY = "/usr/share/keyrings/debian-archive-keyring.gpg"


def mirrors(root: Path) -> list:
    script = f'eval "$(sed -n "/^apt_debian_mirrors()/,/^}}/p" {ROOT / "scripts" / "setup.sh"})"; apt_debian_mirrors "$1"'
    result = subprocess.run(["bash", "-c", script, "mirrors", str(root)], capture_output=True, text=True, check=True)
    return result.stdout.split()


def machine(tmp_path: Path, os_id: str, files: dict) -> Path:
    for name, text in {"etc/os-release": f"ID={os_id}\n", **files}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_debian_release_entries_of_both_formats_in_order(tmp_path):
    root = machine(tmp_path, "debian", {
        "etc/apt/sources.list.d/debian.sources":
            f"Types: deb\n# a comment: http://commented.invalid/debian\nURIs: http://one.invalid/debian\n"
            f"Suites: bookworm bookworm-updates\nComponents: main\nSigned-By: {DEBIAN_KEY}\n\n"
            f"Types: deb\nURIs: http://one.invalid/debian-security\nSuites: bookworm-security\nSigned-By: {DEBIAN_KEY}\n\n"
            "Types: deb deb-src\nEnabled: no\nURIs: http://off.invalid/debian\nSuites: bookworm\n",
        "etc/apt/sources.list.d/vendor.sources":
            "Types: deb\nURIs: https://vendor.invalid/apt\nSuites: stable\nSigned-By: /etc/apt/keyrings/vendor.gpg\n",
        "etc/apt/sources.list":
            "deb http://two.invalid/debian bookworm main\n"
            "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] https://docker.invalid/debian bookworm stable\n"
            f"deb-src [signed-by={DEBIAN_KEY}] http://three.invalid/debian/ bookworm main\n"
            "deb http://one.invalid/debian bookworm-updates main\n"
            "# deb http://commented.invalid/debian bookworm main\n",
    })
    assert mirrors(root) == ["http://one.invalid/debian", "http://two.invalid/debian", "http://three.invalid/debian/"]


def test_a_machine_that_is_not_debian_names_none(tmp_path):
    root = machine(tmp_path, "ubuntu", {"etc/apt/sources.list": "deb http://ubuntu.invalid/ubuntu noble main\n"})
    assert mirrors(root) == []
