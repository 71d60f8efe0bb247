"""``python -m evaluations.table5 run|report`` (same as ``flownet2 table5``, without the
entry point: works before the package is re-installed)."""

import sys

from flownet2_core.cli import main

from evaluations.table5.commands import TABLE5

sys.exit(main(["table5", *sys.argv[1:]], {"table5": TABLE5}))
