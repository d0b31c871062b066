# Sourced by scripts/test.sh: the UI end-to-end test drives Debian's headless Chromium.
# Installs it as root with apt-get when missing; otherwise says exactly what to install.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Installing Debian's chromium for the UI end-to-end test (apt-get)..." >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "The UI end-to-end test needs Chromium and this script cannot install it (needs root" >&2
    echo "and apt-get). Install it, then re-run:  sudo apt-get install chromium" >&2
    exit 1
  fi
fi
