#!/usr/bin/env python3
"""Rebuild this sample from Debian's dataset-fashion-mnist: the first 2,000 training
and the first 1,000 test images (and their labels), in the original IDX format, gzipped.

    python3 data/sample/make_sample.py [/usr/share/datasets/fashion-mnist]
"""
import gzip, os, struct, sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
OUT = os.path.dirname(os.path.abspath(__file__))

def take(name, count):
    with gzip.open(os.path.join(SRC, name + ".gz"), "rb") as f:
        data = f.read()
    ndims = data[3]
    dims = list(struct.unpack(">%dI" % ndims, data[4 : 4 + 4 * ndims]))
    item = 1
    for d in dims[1:]:
        item *= d
    header = data[:4] + struct.pack(">%dI" % ndims, count, *dims[1:])
    body = data[4 + 4 * ndims : 4 + 4 * ndims + count * item]
    # mtime=0 keeps the bytes reproducible.
    with gzip.GzipFile(os.path.join(OUT, name + ".gz"), "wb", mtime=0) as f:
        f.write(header + body)

take("train-images-idx3-ubyte", 2000)
take("train-labels-idx1-ubyte", 2000)
take("t10k-images-idx3-ubyte", 1000)
take("t10k-labels-idx1-ubyte", 1000)
