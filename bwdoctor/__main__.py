"""python -m bwdoctor"""

from .cli import console

console()
