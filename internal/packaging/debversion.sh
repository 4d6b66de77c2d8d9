#!/bin/sh
# Prints the Debian upstream version of the wgbird package, from git:
#   at tag v1.2.3              1.2.3
#   five commits after it      1.2.3+git5.gabc1234
#   at tag v1.3.0-rc1          1.3.0~rc1   (sorts before 1.3.0)
#   before any v* tag          0.0~git20250102.abc1234 (commit date)
# "+dirty" is appended when tracked files differ from the commit.
set -eu

if ! git rev-parse --git-dir >/dev/null 2>&1; then
	echo 0.0~unknown
	exit 0
fi
if d=$(git describe --tags --match 'v[0-9]*' --long 2>/dev/null); then
	# v1.2.3-5-gabc1234
	hash=${d##*-}
	rest=${d%-*}
	n=${rest##*-}
	tag=${rest%-*}
	v=$(printf '%s' "${tag#v}" | tr '-' '~')
	if [ "$n" != 0 ]; then
		v="$v+git$n.$hash"
	fi
else
	v="0.0~git$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d).$(git rev-parse --short HEAD)"
fi
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
	v="$v+dirty"
fi
printf '%s\n' "$v"
