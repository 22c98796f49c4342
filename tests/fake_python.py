#!/usr/bin/env python3
"""Stands in for `python` in job tests: run as `fake_python.py -m fer_core train --run DIR`,
it looks like a training process (its command line names fer_core) and sleeps until killed."""

import time

time.sleep(600)
