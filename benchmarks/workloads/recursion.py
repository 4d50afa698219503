"""Deep recursion: naive Fibonacci plus a bounded Ackermann, many tiny calls."""

import sys

SIZE = 30


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def ackermann(m, n):
    if m == 0:
        return n + 1
    if n == 0:
        return ackermann(m - 1, 1)
    return ackermann(m - 1, ackermann(m, n - 1))


def main(size):
    sys.setrecursionlimit(10000)
    total = 0
    for n in range(size - 4, size + 1):
        total += fib(n)
    total += ackermann(2, size * 10)
    print(f"recursion checksum {total}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else SIZE)
