#!/bin/sh
# Loads the data files copied to /opt/swefreq-db/data into this node's
# database (the development database: live databases are its clones). It
# runs on every lab up and loads only a file that changed.
set -eu
cd /
swefreq-load /opt/swefreq-db/data
swefreq-drift /opt/swefreq-db/data
