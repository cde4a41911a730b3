"""Resident memory of this process (Linux ``/proc``), for benchmarks.

``reset_peak_rss`` makes the kernel's high-water mark (``VmHWM``) start again from the
current RSS (``echo 5 > /proc/self/clear_refs``, Linux >= 4.0), so the peak of one
phase of a run can be read with ``peak_rss_gib`` after it.
"""


def _status_kb(field: str) -> int:
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith(field + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_gib() -> float:
    """Resident memory now."""
    return _status_kb('VmRSS') / (1 << 20)


def peak_rss_gib() -> float:
    """Peak resident memory since the start or the last :func:`reset_peak_rss`."""
    return _status_kb('VmHWM') / (1 << 20)


def reset_peak_rss() -> bool:
    """Restart the peak from the current RSS; False where the kernel does not allow it."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False
