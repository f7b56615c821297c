# SPDX-License-Identifier: Apache-2.0
# bash completion for vizfs: commands, options, configs, tile paths.
_vizfs()
{
	local cur prev cmd i opts
	COMPREPLY=()
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	cmd=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-*) ;;
		*) cmd=${COMP_WORDS[i]}; break ;;
		esac
	done
	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "mount prefetch merge export render info sample --help --version" -- "$cur"))
		return
	fi
	case $prev in
	--cache|-o|--output)
		COMPREPLY=($(compgen -d -- "$cur")); [[ $prev != --cache ]] && COMPREPLY+=($(compgen -f -- "$cur"))
		return ;;
	--workers|-w|--zoom|-z|--shard|--count|-n|--seed|-s|--watch|--cell|-m|--bbox|-b|--crs|-c)
		return ;;
	esac
	case $cmd in
	prefetch) opts="--workers --zoom --quiet --json --staged --raw --cache --shard --help --version" ;;
	merge) opts="--workers --quiet --json --staged --raw --cache --help --version" ;;
	export) opts="--workers --quiet --json --staged --raw --cache --help --version" ;;
	render) opts="--output --workers --staged --raw --cache --help --version" ;;
	info) opts="--json --prometheus --staged --raw --cache --help --version" ;;
	mount) opts="--foreground --debug --workers --no-prefetch --watch --staged --raw --cache -o --help --version" ;;
	sample) opts="--count --bbox --seed --crs --cell --quiet --help --version" ;;
	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$opts" -- "$cur"))
		return
	fi
	# positional arguments: a config first, then directories / tile paths
	local npos=0 cfg=
	for ((i = i + 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--cache|-o|--output|--workers|-w|--zoom|-z|--shard|--watch) ((i++)) ;;
		-*) ;;
		*) ((npos++)); [[ $npos == 1 ]] && cfg=${COMP_WORDS[i]} ;;
		esac
	done
	if [[ $npos == 0 && $cmd != sample ]]; then
		COMPREPLY=($(compgen -f -X '!*.json' -- "$cur") $(compgen -d -- "$cur"))
	elif [[ $cmd == render && $npos == 1 ]]; then
		local tops="geotiff/ web_tiles/ staged/ staging_summary.csv rasters_summary.csv"
		COMPREPLY=($(compgen -W "$tops" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o filenames -F _vizfs vizfs
