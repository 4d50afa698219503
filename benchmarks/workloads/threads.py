"""Two threads doing CPU work at once (Collatz lengths, prime sieve), joined by the main thread."""

import sys
import threading

SIZE = 22000


def collatz_total(limit, results):
    total = 0
    for start in range(1, limit):
        n = start
        steps = 0
        while n != 1:
            n = n // 2 if n % 2 == 0 else 3 * n + 1
            steps += 1
        total += steps
    results["collatz"] = total


def is_prime(n):
    if n < 2:
        return False
    divisor = 2
    while divisor * divisor <= n:
        if n % divisor == 0:
            return False
        divisor += 1
    return True


def prime_total(limit, results):
    results["primes"] = sum(n for n in range(limit * 4) if is_prime(n))


def main(size):
    results = {}
    workers = [threading.Thread(target=collatz_total, args=(size, results), name="collatz"),
               threading.Thread(target=prime_total, args=(size, results), name="primes")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(f"threads checksum {results['collatz']} {results['primes']}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else SIZE)
