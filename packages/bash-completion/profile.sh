# /usr/local/etc/profile.d/bash_completion.sh (package bash-completion):
# /etc/profile sources this in every login shell; only an interactive bash
# (`bash -l`) loads the completions, once. Written for busybox sh too, which
# sources it and must do nothing.
if [ -n "${BASH_VERSION-}" ] && [ -n "${PS1-}" ] && [ -z "${BASH_COMPLETION_VERSINFO-}" ]; then
	case $- in
	*i*)
		# A user's settings for bash-completion, as Debian's hook reads them.
		[ -r "${XDG_CONFIG_HOME:-$HOME/.config}/bash_completion" ] &&
			. "${XDG_CONFIG_HOME:-$HOME/.config}/bash_completion"
		# Found from this file, so the package works wherever warp put it
		# (/usr/local, or a test's --root).
		_k1os_bc=${BASH_SOURCE%/*}/../../share/bash-completion/bash_completion
		if shopt -q progcomp && [ -r "$_k1os_bc" ]; then
			. "$_k1os_bc"
		fi
		unset _k1os_bc
		;;
	esac
fi
