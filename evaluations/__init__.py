"""Benchmarks, Table 5 and reports built on flownet2_core and flowapps."""
