set -e
echo "start"
f=/tmp/kt-script-$$
cat > $f <<END
line one
line two
END
wc -l < $f
sort -r $f | head -1
trap 'echo trapped USR1' USR1
kill -USR1 $$
sleep 0.1 &
bg=$!
wait $bg
echo "background done: $?"
(cd /tmp && pwd)
echo "a b c" | xargs -n1 echo item
find /work/main/src/kontain/arch -name '*.S' -exec basename {} \;
x=$(busybox echo nested $(echo deeper))
echo "$x"
echo err >&2 2>/dev/null
if grep -q two $f; then echo found; fi
rm -f $f
case "abc" in a*) echo matched;; esac
i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo "i=$i"
exit 7
