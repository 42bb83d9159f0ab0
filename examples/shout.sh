#!/bin/sh
# The shout tool of agent.ini: reads the arguments {"text": "..."} on
# stdin and prints the text in capital letters.
sed -n 's/.*"text" *: *"\([^"]*\)".*/\1/p' | tr '[:lower:]' '[:upper:]'
