#!/bin/sh
# Prints a (made up) forecast for $CITY, one line per day in days.txt.
set -e
echo "Forecast for ${CITY} (${UNITS}), $(cat /var/lib/forcast/days) days:"
n=0
while read -r day; do
  n=$((n + 1))
  echo "  ${day}: $((14 + n * 3 % 7))°, $( [ $((n % 2)) -eq 0 ] && echo sunny || echo showers)"
done < /app/days.txt
