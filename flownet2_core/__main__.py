"""``python -m flownet2_core`` = the ``flownet2`` command (handy under torchrun)."""

import sys

from flownet2_core.cli import main

sys.exit(main())
