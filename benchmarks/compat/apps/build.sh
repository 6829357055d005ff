#!/bin/sh
# gcc + make -j over a few translation units, then run the program.
set -eu
d=/tmp/build; mkdir -p $d; cd $d
for i in 1 2 3 4 5 6 7 8; do
  printf 'int f%d(int x) { return x + %d; }\n' $i $i > f$i.c
done
{ echo '#include <stdio.h>'; for i in 1 2 3 4 5 6 7 8; do echo "int f$i(int);"; done
  echo 'int main(void) { int s = 0;'; for i in 1 2 3 4 5 6 7 8; do echo "s = f$i(s);"; done
  printf "%s\n" 'printf("%d\n", s); return s != 36; }'; } > main.c
cat > Makefile <<'MK'
OBJS = main.o f1.o f2.o f3.o f4.o f5.o f6.o f7.o f8.o
prog: $(OBJS)
	$(CC) -o $@ $(OBJS)
%.o: %.c
	$(CC) -O2 -Wall -c -o $@ $<
MK
make -j4 CC=gcc
./prog
make -j4 -B prog >/dev/null && ./prog >/dev/null
echo OK
