#!/usr/bin/python3
import sys
print("skip: not written yet"); sys.exit(77)
