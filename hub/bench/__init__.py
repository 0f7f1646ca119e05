"""``synchub bench``: the scenarios of docs/benchmarks.md, each beside its baseline."""
