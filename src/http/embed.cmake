# SPDX-License-Identifier: MIT
# Turns a file into a C source defining bp__dashboard_html and its length.
# cmake -DIN=file -DOUT=file.c -P embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
file(WRITE "${OUT}" "/* generated from dashboard.html by embed.cmake */\n#include <stddef.h>\n"
  "__attribute__((visibility(\"hidden\"))) const char bp__dashboard_html[] = {${body} 0};\n"
  "__attribute__((visibility(\"hidden\"))) const size_t bp__dashboard_len = ${len};\n")
