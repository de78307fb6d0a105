"""Peak resident memory of this process.

Read from /proc (VmHWM), not getrusage: ru_maxrss survives exec, so a child started by a big parent would
report the parent's peak.
"""


def peak_rss_mb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no VmHWM in /proc/self/status")
