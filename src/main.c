/* SPDX-License-Identifier: Apache-2.0 */
/* vizfs command line entry point: dispatch to subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
} commands[] = {
	{"mount", vz_cli_mount, "serve the pyramid as a FUSE filesystem"},
	{"prefetch", vz_cli_prefetch, "build the whole pyramid into the cache"},
	{"merge", vz_cli_merge, "combine the caches of a sharded build"},
	{"export", vz_cli_export, "write the PDG tree and CSVs to a directory"},
	{"render", vz_cli_render, "write one tile (or CSV) to stdout"},
	{"info", vz_cli_info, "show cache and input state per zoom"},
	{"sample", vz_cli_sample, "generate a synthetic ice-wedge polygon set"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vizfs [--help] [--version] COMMAND [ARGS]\n\n"
		   "The PDG tile pyramid (GeoTIFF + PNG) from vector polygons,"
		   " through an LMDB cache.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
	fprintf(f, "\nRun 'vizfs COMMAND --help' for the options of a "
		   "command; 'man vizfs' for details.\n"
		   "Exit status: 0 ok, 1 usage error, 2 runtime failure.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return VZ_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		return VZ_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		vz_cli_version();
		return VZ_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "vizfs: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return VZ_EXIT_USAGE;
}
