# ssl-tools build configuration. Override on the command line: make CC=clang
VERSION   = 0.1.0
PREFIX    ?= /usr/local
MANPREFIX ?= $(PREFIX)/share/man
CC        ?= cc
PKG_CONFIG ?= pkg-config

# pkg-config names of the libraries we link
PKGS      = libarchive openblas msgpack libjpeg libpng jansson
TEST_PKGS = check

OPT       ?= -O2 -g
WARN      = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla -Wno-unused-parameter
CFLAGS    ?=
LDFLAGS   ?=
