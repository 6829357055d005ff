"""Reproducer of FINDINGS.md section 2: under runsc-py, glibc aborts with
"The futex facility returned an unexpected error code" in a thread that
runs while another thread vforks.  Run in a container of the compat rootfs:

    python3 /compat/repro/vfork_futex.py vfork    # aborts under runsc-py
    python3 /compat/repro/vfork_futex.py fork     # ok

(CPython's subprocess uses vfork when subprocess._USE_VFORK is true.)
"""
import subprocess
import sys
import threading
import time

subprocess._USE_VFORK = sys.argv[1:2] == ["vfork"]
stop = False


def churn() -> None:
    while not stop:
        time.sleep(0.001)


t = threading.Thread(target=churn)
t.start()
for _ in range(200):
    try:
        subprocess.Popen(["nonexisting_i_hope"])
    except OSError:
        pass
stop = True
t.join()
print("ok")
