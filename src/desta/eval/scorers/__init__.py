"""Rule scorers of the official benchmark code, reimplemented item for item (quirks included).

Each module names the official file it follows; every behaviour that looks like a bug but moves the
official numbers is kept and marked ``official quirk``. Golden tests: tests/eval/test_eval_parity.py.
"""
