"""The shell scripts ringmgr runs on a node for the relinker (with ``sh -c SCRIPT sh
ARGS...``: the arguments are never part of the script text): start one detached run
per step, ask its state, stop it, read its files and state in one round trip.
"""

# argv: sh -c START sh RUN_DIR STEP LOCK CMD...   prints one "state=... key=value" line
START = r'''
d=$1; step=$2; lock=$3; shift 3
pidf="$d/$step.pid"; rcf="$d/$step.rc"; logf="$d/$step.log"
alive() { [ -s "$pidf" ] || return 1; pid=$(cat "$pidf");
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$pidf"; }
w=${RINGMGR_WAIT:-0}
if [ "${RINGMGR_STATUS_ONLY:-}" = 1 ] && [ "$w" -gt 0 ] && [ ! -s "$rcf" ] && alive; then
  while [ "$w" -gt 0 ] && [ ! -s "$rcf" ] && kill -0 "$pid" 2>/dev/null; do
    sleep 0.1; w=$((w-1)); done
fi
if [ -s "$rcf" ]; then echo "state=finished rc=$(cat "$rcf")"; exit 0; fi
if alive; then echo "state=running pid=$pid"; exit 0; fi
[ "${RINGMGR_STATUS_ONLY:-}" = 1 ] && { [ -s "$pidf" ] && echo "state=died pid=$(cat "$pidf")" || echo "state=none"; exit 0; }
command -v setsid >/dev/null && command -v flock >/dev/null || { echo "state=error msg=setsid-or-flock-missing"; exit 0; }
mkdir -p "$d" || { echo "state=error msg=cannot-create-run-dir"; exit 0; }
flock -n "$lock" true || { echo "state=busy"; exit 0; }
rm -f "$pidf"
setsid flock -n "$lock" sh -c 'p=$1; r=$2; l=$3; shift 3; echo $$ > "$p.tmp" && mv "$p.tmp" "$p"
  echo "ringmgr: started pid $$ at $(date +%s.%N)" >>"$l"
  "$@" >>"$l" 2>&1 </dev/null; rc=$?; echo "ringmgr: exit $rc at $(date +%s.%N)" >>"$l"
  echo $rc > "$r.tmp"; mv "$r.tmp" "$r"' sh "$pidf" "$rcf" "$logf" "$@" \
  </dev/null >/dev/null 2>&1 &
i=0; while [ ! -s "$pidf" ] && [ ! -s "$rcf" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
if [ -s "$rcf" ]; then echo "state=finished rc=$(cat "$rcf")"; exit 0; fi
[ -s "$pidf" ] && echo "state=started pid=$(cat "$pidf")" || echo "state=busy"
'''
TAIL = 'tail -n "$2" "$1" 2>/dev/null || true'
# argv: sh -c STOP sh RUN_DIR STEP   stops the step's wrapper, the relinker and its
# workers (the wrapper's process tree and every process in their sessions): TERM, then
# KILL after 10 s; prints "state=stopped pid=..." or "state=notrunning"
STOP = r"""
d=$1; step=$2; pidf="$d/$step.pid"
[ -s "$pidf" ] && pid=$(cat "$pidf") && kill -0 "$pid" 2>/dev/null &&
  tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$pidf" ||
  { echo "state=notrunning"; exit 0; }
sid=$(ps -o sid= -p "$pid" | tr -d ' '); [ -n "$sid" ] || sid=-1
tree() { ps -e -o pid= -o ppid= -o sid= | awk -v root="$pid" -v s0="$sid" '
  { p[NR]=$1; pp[NR]=$2; sd[NR]=$3 } END { k[root]=1; ss[s0]=1; n=1
    while (n) { n=0; for (i in p) if (!(p[i] in k) && (pp[i] in k || sd[i] in ss)) {
      k[p[i]]=1; ss[sd[i]]=1; n=1 } }
    for (x in k) print x }'; }
all=$(tree); i=0; sig=TERM
while [ -n "$all" ] && [ $i -lt 150 ]; do
  kill -$sig $all 2>/dev/null; sleep 0.1; i=$((i+1)); [ $i -ge 100 ] && sig=KILL
  left=""; for x in $all; do case $(ps -o stat= -p "$x") in ""|Z*) ;; *) left="$left $x";;
  esac; done; all=$left
done
[ -z "$all" ] && echo "state=stopped pid=$pid" || echo "state=error msg=still-running:$all"
"""
# argv: sh -c GATHER sh TOKEN START RUN_DIR STEP LOCK FILE...: each file readable (0) or
# not (1) with its text, then the step's state (START, looking only); one round trip
GATHER = r'''
t=$1; start=$2; d=$3; step=$4; lock=$5; shift 5
for p in "$@"; do
  if [ -r "$p" ] && [ -f "$p" ]; then printf '%s file 0\n' "$t"; cat "$p" 2>/dev/null
  else printf '%s file 1\n' "$t"; fi; printf '\n'
done
printf '%s state\n' "$t"
RINGMGR_STATUS_ONLY=1 RINGMGR_WAIT=0 sh -c "$start" sh "$d" "$step" "$lock"
'''
