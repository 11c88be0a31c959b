"""What every stage shares and nothing in it depends on: the records (Caffe's debug lines as data), the net
and solver descriptions, the error users see, the run directory, and Caffe's protobuf classes."""
