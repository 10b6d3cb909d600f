/*
 * test_chunker.c - the chunker per language: Python units with decorators and their comment,
 * module code between them, strings that look like code; C functions with braces in strings,
 * comments and preprocessor lines, structs left out; Markdown sections with headings inside
 * fences ignored; text paragraphs; the size and count caps.
 */
#include <string.h>

#include "core/ggi.h"
#include "retrieval/chunker.h"
#include "testutil.h"

static ggi_chunk *ch;
static size_t n;

static int chunk(const char *text, const char *lang, size_t max, size_t max_n)
{
    free(ch);
    ch = NULL;
    return ggi_chunk_text(text, strlen(text), lang, max, max_n, &ch, &n);
}

/* The text of chunk i. */
static char buf[8192];
static const char *txt(const char *text, size_t i)
{
    if (i >= n)
        return "(none)";
    snprintf(buf, sizeof buf, "%.*s", (int)ch[i].len, text + ch[i].off);
    return buf;
}

static void test_python(void)
{
    const char *src =
        "import os\n"                          /* 1 */
        "X = 1\n"                              /* 2 */
        "\n"                                   /* 3 */
        "# Adds two numbers.\n"                /* 4 */
        "@decorate\n"                          /* 5 */
        "@other(1,\n"                          /* 6 */
        "       2)\n"                          /* 7 */
        "def add(a, b):\n"                     /* 8 */
        "    s = '''\n"                        /* 9 */
        "def not_a_function():\n"              /* 10 */
        "'''\n"                                /* 11 */
        "    return a + b\n"                   /* 12 */
        "\n"                                   /* 13 */
        "\n"                                   /* 14 */
        "class Box:\n"                         /* 15 */
        "    def get(self):\n"                 /* 16 */
        "        return (1,\n"                 /* 17 */
        "2)\n"                                 /* 18 */
        "\n"                                   /* 19 */
        "async def run():\n"                   /* 20 */
        "    pass\n"                           /* 21 */
        "if __name__ == '__main__':\n"         /* 22 */
        "    run()\n";                         /* 23 */
    CHECK_RC(chunk(src, "python", 0, 0), 0);
    CHECK(n == 5);
    CHECK_STR(txt(src, 0), "import os\nX = 1");
    CHECK(ch[0].line_start == 1 && ch[0].line_end == 2);
    CHECK(n > 1 && ch[1].line_start == 4 && ch[1].line_end == 12);
    CHECK_STR(n > 1 ? ch[1].title : "", "def add");
    CHECK_CONTAINS(txt(src, 1), "# Adds two numbers.\n@decorate");
    CHECK_CONTAINS(txt(src, 1), "return a + b");
    CHECK(n > 2 && ch[2].line_start == 15 && ch[2].line_end == 18);
    CHECK_STR(n > 2 ? ch[2].title : "", "class Box");
    CHECK(n > 3 && ch[3].line_start == 20 && ch[3].line_end == 21);
    CHECK_STR(n > 3 ? ch[3].title : "", "def run");
    CHECK(n > 4 && ch[4].line_start == 22 && ch[4].line_end == 23);
}

static void test_c(void)
{
    const char *src =
        "#include <stdio.h>\n"                       /* 1 */
        "#define BRACE {\n"                          /* 2 */
        "struct point { int x, y; };\n"              /* 3 */
        "\n"                                         /* 4 */
        "/* Prints a brace: } */\n"                  /* 5 */
        "static void f(void)\n"                      /* 6 */
        "{\n"                                        /* 7 */
        "    printf(\"}\\\"{\");\n"                  /* 8 */
        "    char c = '}';\n"                        /* 9 */
        "    // }\n"                                 /* 10 */
        "    if (c) { c = 0; }\n"                    /* 11 */
        "}\n"                                        /* 12 */
        "int table[] = { 1, 2 };\n"                  /* 13 */
        "int main(int argc, char **argv) {\n"        /* 14 */
        "    return argc > 1;\n"                     /* 15 */
        "}\n";                                       /* 16 */
    CHECK_RC(chunk(src, "c", 0, 0), 0);
    CHECK(n == 4);
    CHECK(n > 0 && ch[0].line_start == 1 && ch[0].line_end == 3);
    CHECK(n > 1 && ch[1].line_start == 5 && ch[1].line_end == 12);
    CHECK_STR(n > 1 ? ch[1].title : "", "f");
    CHECK(n > 2 && ch[2].line_start == 13 && ch[2].line_end == 13);
    CHECK(n > 3 && ch[3].line_start == 14 && ch[3].line_end == 16);
    CHECK_STR(n > 3 ? ch[3].title : "", "main");
}

static void test_markdown(void)
{
    const char *src = "Intro line.\n"
                      "# Title\n"
                      "Text.\n"
                      "```\n"
                      "# not a heading\n"
                      "```\n"
                      "## Part two\n"
                      "More.\n"
                      "#hashtag is not a heading\n";
    CHECK_RC(chunk(src, "markdown", 0, 0), 0);
    CHECK(n == 3);
    CHECK_STR(txt(src, 0), "Intro line.");
    CHECK(n > 1 && ch[1].line_start == 2 && ch[1].line_end == 6);
    CHECK_STR(n > 1 ? ch[1].title : "", "# Title");
    CHECK(n > 2 && ch[2].line_start == 7 && ch[2].line_end == 9);
    CHECK_STR(n > 2 ? ch[2].title : "", "## Part two");
}

static void test_text_and_caps(void)
{
    char mid[301], big[3001];
    memset(mid, 'm', sizeof mid - 1);
    mid[sizeof mid - 1] = '\0';
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ggi_buf b = GGI_BUF_INIT;
    ggi_buf_puts(&b, "short one.\n\nshort two.\n\n\n");
    ggi_buf_puts(&b, mid);
    ggi_buf_puts(&b, "\n\nlast paragraph\nwith two lines\n");
    CHECK_RC(chunk(b.data, "text", 0, 0), 0);
    /* Short paragraphs merge with what follows until the chunk reaches the minimum size. */
    CHECK(n == 2);
    CHECK(n > 0 && ch[0].line_start == 1 && ch[0].line_end == 6);
    CHECK(n > 1 && ch[1].line_start == 8 && ch[1].line_end == 9);
    CHECK_STR(txt(b.data, 1), "last paragraph\nwith two lines");
    ggi_buf_free(&b);
    /* A 1000-byte cap cuts one long line into pieces of at most 1000 bytes. */
    CHECK_RC(chunk(big, "text", 1000, 0), 0);
    CHECK(n == 3);
    for (size_t i = 0; i < n; i++)
        CHECK(ch[i].len <= 1000 && ch[i].line_start == 1);
    /* The count cap is an error, not a silent cut. */
    CHECK_RC(chunk(big, "text", 1000, 2), GG_ETOOBIG);
    CHECK_CONTAINS(gg_error_last(), "more than 2 chunks");
    CHECK_RC(chunk("", "python", 0, 0), 0);
    CHECK(n == 0);
    CHECK_RC(chunk("\n\n  \n", "c", 0, 0), 0);
    CHECK(n == 0);
    CHECK_STR(ggi_chunk_language_of("a/b.py"), "python");
    CHECK_STR(ggi_chunk_language_of("x.H"), "c");
    CHECK_STR(ggi_chunk_language_of("README.md"), "markdown");
    CHECK_STR(ggi_chunk_language_of("notes"), "text");
    CHECK_STR(ggi_chunk_language_of("dir.py/file"), "text");
}

int main(void)
{
    test_python();
    test_c();
    test_markdown();
    test_text_and_caps();
    free(ch);
    return test_exit();
}
