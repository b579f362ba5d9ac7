"""`python -m bench` (or `make bench`): Realize against Syncthing and rsync, in one run.

Two measurements, each done for every tool in the same run so that the ratios compare like
with like on this machine:

- tree transfer: seconds from "peer A is given a tree" to "peer B has all of it";
- delta bytes: bytes on the wire after a one-byte edit and a 4 KiB insertion in a 64 MiB file.

Everything the benchmark starts (appliances, their databases, Syncthing processes, temporary
directories) is stopped or removed before it exits, even when a step fails or times out.
"""
