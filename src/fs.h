/* SPDX-License-Identifier: Apache-2.0 */
/* FUSE low-level operations of a mounted pyramid (private to the daemon). */
#ifndef VIZFS_FS_H
#define VIZFS_FS_H

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 314
#endif
#include <fuse_lowlevel.h>

#include "vizfs/conf.h"
#include "vizfs/service.h"

/** Entry and attribute timeouts of tiles and directories (immutable while
 *  mounted: the cache fingerprint is fixed at mount time). */
#define VZ_FS_TTL 3600.0
/** How long the kernel may remember that a name does not exist. */
#define VZ_FS_NEG_TTL 1.0

/**
 * The filesystem state behind a FUSE session: the config, the render
 * service and the virtual files.  The tree is stateless: every node is
 * encoded in its 64-bit inode number, so forget is a no-op.  Thread-safe:
 * the operations run concurrently in the session's worker threads and in
 * the service's render threads (asynchronous replies).
 */
struct vz_fs;

/** Create the state for @p c (which must outlive it).  The session may
 *  be created with it at once (to check mount options early); the service
 *  must be set before mounting.  @return 0 or -ENOMEM. */
int vz_fs_new(const struct vz_conf *c, struct vz_fs **out);

/** Serve the files of @p s (which must outlive the session).  Call once,
 *  before fuse_session_mount(). */
void vz_fs_set_service(struct vz_fs *fs, struct vz_service *s);

/**
 * Replace the service while mounted (the inputs changed): call
 * vz_fs_swap_begin() (waits for operations using the old service and holds
 * off new ones), stop the old service, start the new one,
 * vz_fs_set_service() (which also starts a new inode generation; NULL
 * makes every tile operation fail with EIO), vz_fs_swap_end(), then
 * vz_fs_invalidate() so that the kernel forgets the old files.
 */
void vz_fs_swap_begin(struct vz_fs *fs);
void vz_fs_swap_end(struct vz_fs *fs);
void vz_fs_invalidate(struct vz_fs *fs, struct fuse_session *se);

/** Free; NULL-safe.  Only after the session ended and the service
 *  stopped (no reply may still be pending). */
void vz_fs_free(struct vz_fs *fs);

/** The operations table; pass the vz_fs as userdata to fuse_session_new. */
extern const struct fuse_lowlevel_ops vz_fs_ops;

#endif
