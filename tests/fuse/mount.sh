#!/bin/sh
echo "skip: mount tests not written yet"; exit 77
