"""A multiprocessing Pool over a CPU-bound function (issue 6's figure).

Usage: python pool.py [WORKERS] [TASKS] [SIZE] [START_METHOD]
"""

import multiprocessing
import sys


def collatz_steps(limit):
    longest = 0
    for start in range(1, limit):
        n, steps = start, 0
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        longest = max(longest, steps)
    return longest


def main():
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    tasks = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    size = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    method = sys.argv[4] if len(sys.argv) > 4 else "fork"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        results = pool.map(collatz_steps, [size + task for task in range(tasks)])
    print("checksum", sum(results))


if __name__ == "__main__":
    main()
