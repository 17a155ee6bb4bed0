"""python -m bwdoctor"""

import sys

from .cli import main

sys.exit(main())
