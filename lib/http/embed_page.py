"""embed_page.py - writes a C file defining one string, the bytes of a given file, at build time
(the dashboard, edited as an .html file and served from memory; the zygote init program).
Usage: embed_page.py INPUT.html OUTPUT.c SYMBOL"""

import sys


def main():
    src, dst, symbol = sys.argv[1:4]
    with open(src, "rb") as f:
        data = f.read()
    lines = ["/* Generated from %s by embed_page.py; do not edit. */" % src.split("/")[-1],
             "#include <stddef.h>",
             "const char %s[] =" % symbol]
    for i in range(0, len(data), 64):
        chunk = data[i:i + 64]
        lines.append('    "' + "".join("\\x%02x" % b for b in chunk) + '"')
    lines[-1] += ";"
    lines.append("const size_t %s_len = %d;" % (symbol, len(data)))
    with open(dst, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
