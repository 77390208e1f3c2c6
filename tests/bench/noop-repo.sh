# Sourced by the bench scripts: builds vnx and the fake agent (release) and
# makes a git repository whose only provider, `noop`, is the fake agent.
#
#   source tests/bench/noop-repo.sh '"--sleep-ms", "1000", "--final"'
#
# Sets: root, vnx, fake, work (a temp dir removed on exit), repo (cwd after).
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
target=${CARGO_TARGET_DIR:-$root/target}
cargo build --quiet --release -p vnx-tests --bin fake-agent
cargo build --quiet --release -p vnx-cli --bin vnx
vnx="$target/release/vnx"
fake="$target/release/fake-agent"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
repo="$work/repo"
mkdir -p "$repo"
cd "$repo"
git init -q -b main
git config user.name bench
git config user.email bench@example.invalid
cat > vnx.toml <<TOML
[run]
provider = "noop"
cross_review = false

[retry]
max_retries = 0

[providers.noop]
kind = "command"
binary = "$fake"
argv = ["fake-agent", $1]
output = "claude-stream-json"
TOML
echo "# bench" > README.md
git add -A
git commit -qm initial
