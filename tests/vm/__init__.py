"""The guest lane: Debian guests under qemu, for what only another kernel can show (pure cgroup v2 under
systemd, several nodes on one bridge).  Entry point: scripts/vm-run; library: tests.vm.machine."""
