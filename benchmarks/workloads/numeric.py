"""A numeric loop: an escape-time fractal on a grid plus an integer generator, in one function."""

import sys

SIZE = 280


def escape_counts(size, max_iter=60):
    """Iterate z = z*z + c for every point of a size x size grid; return the sum of counts."""
    total = 0
    for row in range(size):
        ci = -1.2 + 2.4 * row / size
        for col in range(size):
            cr = -2.0 + 2.6 * col / size
            zr = zi = 0.0
            count = 0
            while count < max_iter and zr * zr + zi * zi < 4.0:
                zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
                count += 1
            total += count
    return total


def lcg_mix(steps):
    """A linear congruential generator folded into a running checksum."""
    state = 12345
    acc = 0
    for step in range(steps):
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        acc = (acc + (state >> 7) * (step | 1)) % 1_000_000_007
    return acc


def main(size):
    print(f"numeric checksum {escape_counts(size)} {lcg_mix(size * size * 5)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else SIZE)
