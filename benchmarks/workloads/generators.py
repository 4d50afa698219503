"""Generators and comprehensions: lazy pipelines, nested comprehensions, generator delegation."""

import sys

SIZE = 300000


def numbers(limit):
    value = 1
    for _ in range(limit):
        value = (value * 48271) % 2147483647
        yield value


def windows(iterable, width):
    window = []
    for item in iterable:
        window.append(item)
        if len(window) == width:
            yield tuple(window)
            window.pop(0)


def chained(limit):
    yield from (x % 1000 for x in numbers(limit))
    yield from (x % 997 for x in numbers(limit // 2))


def pipeline(limit):
    small = (x for x in chained(limit) if x % 3)
    sums = (sum(w) for w in windows(small, 4))
    return sum(s % 101 for s in sums)


def comprehensions(limit):
    side = int(limit ** 0.5)
    grid = [[(row * col) % 17 for col in range(side)] for row in range(side)]
    diagonal = {row: grid[row][row] for row in range(side)}
    columns = [sum(grid[row][col] for row in range(side)) for col in range(side)]
    seen = {value for row in grid for value in row if value > 3}
    return sum(diagonal.values()) + sum(columns) + len(seen)


def main(size):
    print(f"generators checksum {pipeline(size)} {comprehensions(size)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else SIZE)
