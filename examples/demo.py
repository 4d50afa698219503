"""A small program to record: Fibonacci numbers, a word count and one handled error."""

import sys


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def word_counts(text):
    counts = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts


def parse(value):
    try:
        return int(value)
    except ValueError:
        return None


def main(argv):
    n = parse(argv[0]) if argv else 10
    print(f"fib({n}) = {fib(n)}")
    words = word_counts("the quick brown fox jumps over the lazy dog the end")
    print("most common:", max(words, key=words.get))
    print("parse('x') ->", parse("x"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
