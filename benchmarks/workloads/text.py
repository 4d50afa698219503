"""String and dict processing: generate a text, count words and pairs, format a report."""

import sys

SIZE = 300000

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
         "mike november oscar papa quebec romeo sierra tango uniform victor whiskey "
         "xray yankee zulu").split()


def make_text(n_words):
    """A deterministic pseudo-random text, with sentences and punctuation."""
    state = 2024
    out = []
    for index in range(n_words):
        state = (state * 1664525 + 1013904223) % 2**32
        word = WORDS[state % len(WORDS)]
        if state % 7 == 0:
            word = word.capitalize()
        out.append(word + ("." if state % 13 == 0 else ","if state % 11 == 0 else ""))
    return " ".join(out)


def normalise(word):
    return word.strip(".,").lower()


def count_words(text):
    counts = {}
    pairs = {}
    previous = None
    for raw in text.split():
        word = normalise(raw)
        counts[word] = counts.get(word, 0) + 1
        if previous is not None:
            key = f"{previous}->{word}"
            pairs[key] = pairs.get(key, 0) + 1
        previous = None if raw.endswith(".") else word
    return counts, pairs


def report(counts, pairs):
    lines = []
    for word, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"{word:<10}{count:>8}{count / sum(counts.values()):>10.4%}")
    for pair, count in sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:50]:
        lines.append("%-24s %6d" % (pair, count))
    return "\n".join(lines)


def checksum(text):
    value = 0
    for char in text:
        value = (value * 31 + ord(char)) % 1_000_003
    return value


def main(size):
    text = make_text(size)
    counts, pairs = count_words(text)
    summary = report(counts, pairs)
    print(f"text checksum {len(counts)} {len(pairs)} {checksum(summary)}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else SIZE)
