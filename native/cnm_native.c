/*
 * cnm_native: the few things Node cannot do itself, for src/kernel/.
 *
 * - openNetlink: a netlink socket that lives in a given network namespace.
 * - netnsCreate / netnsDelete / makeSharedDir: namespaces bound to files, as `ip netns` does.
 * - openInNetns: open a file (e.g. /proc/sys/net/...) as seen from inside a namespace.
 * - nftRun: libnftables in-process (200x cheaper than spawning `nft`).
 * - peerCred: the uid/gid/pid of a unix socket's peer (SO_PEERCRED), for the API's audit log.
 * - udpFast*: the embedded DNS resolver's UDP listeners, served by a native thread (see below).
 *
 * Namespace rule: the calling JS thread never changes namespace. Everything that needs setns()
 * or unshare() runs on a short-lived pthread that dies afterwards, so its namespace goes with it.
 * A socket keeps the namespace it was created in, so the fd stays valid on any thread.
 *
 * Every function is synchronous and throws a JS Error with `.code` (errno name) and `.errno`.
 * Only node_api.h is used; libnftables is declared here because Debian ships no -dev header in
 * the runtime package.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

/* ---- libnftables (libnftables.so.1), prototypes from nftables/libnftables.h ---- */
struct nft_ctx;
extern struct nft_ctx *nft_ctx_new(uint32_t flags);
extern void nft_ctx_free(struct nft_ctx *ctx);
extern int nft_ctx_buffer_output(struct nft_ctx *ctx);
extern int nft_ctx_buffer_error(struct nft_ctx *ctx);
extern const char *nft_ctx_get_output_buffer(struct nft_ctx *ctx);
extern const char *nft_ctx_get_error_buffer(struct nft_ctx *ctx);
extern int nft_run_cmd_from_buffer(struct nft_ctx *nft, const char *buf);
extern void nft_ctx_output_set_flags(struct nft_ctx *ctx, unsigned int flags);
#define NFT_CTX_DEFAULT 0
#define NFT_CTX_OUTPUT_JSON (1 << 4)
/* `nft -t`: no set elements in listings, and none fetched into the cache for them. */
#define NFT_CTX_OUTPUT_TERSE (1 << 11)

#define NL_RCVBUF (4 * 1024 * 1024)
#define PATH_BUF 4096

/* ---- errors ---- */

/* Throws Error(message) with .code = errno name and .errno = err. */
static void throw_errno(napi_env env, int err, const char *what, const char *path) {
  const char *name = strerrorname_np(err);
  char msg[PATH_BUF + 256];
  if (path != NULL)
    snprintf(msg, sizeof msg, "%s \"%s\": %s (%s)", what, path, strerror(err),
             name ? name : "EUNKNOWN");
  else
    snprintf(msg, sizeof msg, "%s: %s (%s)", what, strerror(err), name ? name : "EUNKNOWN");
  napi_value code, text, error, num;
  napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &error);
  napi_create_int32(env, err, &num);
  napi_set_named_property(env, error, "errno", num);
  napi_throw(env, error);
}

static void throw_type(napi_env env, const char *msg) { napi_throw_type_error(env, NULL, msg); }

/* ---- argument helpers ---- */

/* Reads a string argument; null/undefined gives an empty string and *present = false. */
static bool get_path(napi_env env, napi_value v, char *buf, size_t len, bool *present) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_null || t == napi_undefined) {
    if (present == NULL) {
      throw_type(env, "Expected a string");
      return false;
    }
    *present = false;
    buf[0] = 0;
    return true;
  }
  if (t != napi_string) {
    throw_type(env, "Expected a string");
    return false;
  }
  size_t n;
  napi_get_value_string_utf8(env, v, NULL, 0, &n);
  if (n + 1 > len) {
    throw_type(env, "Path is too long");
    return false;
  }
  napi_get_value_string_utf8(env, v, buf, len, &n);
  if (present) *present = true;
  return true;
}

static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want) {
    throw_type(env, "Missing arguments");
    return false;
  }
  return true;
}

/* ---- short-lived namespace thread ---- */

enum job_kind { JOB_NETLINK, JOB_NETNS_CREATE, JOB_OPEN };

struct job {
  enum job_kind kind;
  const char *ns_path; /* NULL: stay in the caller's namespace */
  const char *path;    /* file to create (JOB_NETNS_CREATE) or open (JOB_OPEN) */
  int protocol;        /* JOB_NETLINK */
  int flags;           /* JOB_OPEN */
  int result;          /* fd, or 0 */
  int err;             /* errno of the failed step, 0 on success */
  const char *step;    /* the failed step, for the message */
};

static int enter_netns(struct job *j) {
  if (j->ns_path == NULL) return 0;
  int fd = open(j->ns_path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    j->err = errno;
    j->step = "Cannot open netns";
    return -1;
  }
  if (setns(fd, CLONE_NEWNET) < 0) {
    j->err = errno;
    j->step = "Cannot enter netns";
    close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

static void run_netlink(struct job *j) {
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, j->protocol);
  if (fd < 0) {
    j->err = errno;
    j->step = "Cannot open netlink socket in";
    return;
  }
  struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    j->err = errno;
    j->step = "Cannot bind netlink socket in";
    close(fd);
    return;
  }
  int one = 1;
  /* Extended ACKs carry the kernel's reason text; CAP_ACK keeps our request out of the error
   * reply. Both are best effort: old kernels lack them, and the codec copes without. */
  setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  int size = NL_RCVBUF;
  /* SO_RCVBUFFORCE ignores rmem_max (we are root); fall back when it is refused. */
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  /* A whole nfnetlink batch must fit one sendmsg, which the kernel refuses (EMSGSIZE) beyond
   * the send buffer (wmem_default, ~208 KiB): raise it like nft does. */
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  j->result = fd;
}

static void run_netns_create(struct job *j) {
  int fd = open(j->path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
  if (fd < 0) {
    j->err = errno;
    j->step = "Cannot create netns file";
    return;
  }
  close(fd);
  /* A thread may unshare its own network namespace even in a multithreaded process. */
  if (unshare(CLONE_NEWNET) < 0) {
    j->err = errno;
    j->step = "Cannot unshare netns for";
    unlink(j->path);
    return;
  }
  /* thread-self, not self: only this thread is in the new namespace. */
  if (mount("/proc/thread-self/ns/net", j->path, "none", MS_BIND, NULL) < 0) {
    j->err = errno;
    j->step = "Cannot bind-mount netns onto";
    unlink(j->path);
    return;
  }
  /* Already inside the new namespace: open its netlink socket here and save the caller a
   * second thread and setns (the socket is the first thing every new sandbox needs). */
  if (j->protocol >= 0) {
    run_netlink(j);
    if (j->err != 0) {
      umount2(j->path, MNT_DETACH);
      unlink(j->path);
    }
  }
}

static void run_open(struct job *j) {
  int fd = open(j->path, j->flags | O_CLOEXEC);
  if (fd < 0) {
    j->err = errno;
    j->step = "Cannot open";
    return;
  }
  j->result = fd;
}

static void *job_main(void *arg) {
  struct job *j = arg;
  /* Netns creation must not enter another namespace first: unshare starts from here anyway. */
  if (j->kind != JOB_NETNS_CREATE && enter_netns(j) < 0) return NULL;
  switch (j->kind) {
    case JOB_NETLINK:
      run_netlink(j);
      break;
    case JOB_NETNS_CREATE:
      run_netns_create(j);
      break;
    case JOB_OPEN:
      run_open(j);
      break;
  }
  return NULL;
}

/* Runs a job on a fresh pthread and waits; the thread (and its namespace) is then gone. */
static bool run_job(napi_env env, struct job *j) {
  pthread_t t;
  int rc = pthread_create(&t, NULL, job_main, j);
  if (rc != 0) {
    throw_errno(env, rc, "Cannot start namespace thread", NULL);
    return false;
  }
  pthread_join(t, NULL);
  if (j->err != 0) {
    const char *p = j->kind == JOB_NETLINK ? (j->ns_path ? j->ns_path : "own netns")
                    : j->kind == JOB_NETNS_CREATE ? j->path
                    : (j->step && strcmp(j->step, "Cannot open") == 0) ? j->path
                                                                      : j->ns_path;
    throw_errno(env, j->err, j->step, p);
    return false;
  }
  return true;
}

/* openNetlink(protocol: number, nsPath: string | null): number */
static napi_value OpenNetlink(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int32_t proto;
  if (napi_get_value_int32(env, argv[0], &proto) != napi_ok) {
    throw_type(env, "Expected a protocol number");
    return NULL;
  }
  char ns[PATH_BUF];
  bool has_ns;
  if (!get_path(env, argv[1], ns, sizeof ns, &has_ns)) return NULL;
  struct job j = {.kind = JOB_NETLINK, .ns_path = has_ns ? ns : NULL, .protocol = proto};
  if (!run_job(env, &j)) return NULL;
  napi_value out;
  napi_create_int32(env, j.result, &out);
  return out;
}

/* netnsCreate(path: string, protocol?: number): number | undefined — with a netlink protocol,
 * also returns a netlink socket opened inside the new namespace. */
static napi_value NetnsCreate(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    throw_type(env, "Expected a netns path");
    return NULL;
  }
  char path[PATH_BUF];
  if (!get_path(env, argv[0], path, sizeof path, NULL)) return NULL;
  /* -1: no socket wanted (NETLINK_ROUTE itself is protocol 0). */
  int32_t proto = -1;
  napi_valuetype t = napi_undefined;
  if (argc >= 2) napi_typeof(env, argv[1], &t);
  if (t == napi_number && napi_get_value_int32(env, argv[1], &proto) != napi_ok) proto = -1;
  struct job j = {.kind = JOB_NETNS_CREATE, .path = path, .protocol = proto, .result = -1};
  if (!run_job(env, &j)) return NULL;
  if (proto < 0) return NULL;
  napi_value out;
  napi_create_int32(env, j.result, &out);
  return out;
}

/* netnsDelete(path: string): boolean — false when there was nothing to remove. */
static napi_value NetnsDelete(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char path[PATH_BUF];
  if (!get_path(env, argv[0], path, sizeof path, NULL)) return NULL;
  bool existed = true;
  /* MNT_DETACH: processes still holding the namespace keep it; the name goes now.
   * EINVAL means "not a mount point" (a half-made or already unmounted file), ENOENT "gone":
   * both leave only the unlink to do. */
  if (umount2(path, MNT_DETACH) < 0 && errno != EINVAL && errno != ENOENT) {
    throw_errno(env, errno, "Cannot unmount netns", path);
    return NULL;
  }
  if (unlink(path) < 0) {
    if (errno != ENOENT) {
      throw_errno(env, errno, "Cannot remove netns file", path);
      return NULL;
    }
    existed = false;
  }
  napi_value out;
  napi_get_boolean(env, existed, &out);
  return out;
}

static int mkdir_p(char *path) {
  for (char *p = path + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    int rc = mkdir(path, 0755);
    *p = '/';
    if (rc < 0 && errno != EEXIST) return -1;
  }
  if (mkdir(path, 0755) < 0 && errno != EEXIST) return -1;
  return 0;
}

/* makeSharedDir(dir: string): void — what `ip netns add` does to /run/netns. */
static napi_value MakeSharedDir(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char dir[PATH_BUF];
  if (!get_path(env, argv[0], dir, sizeof dir, NULL)) return NULL;
  if (mkdir_p(dir) < 0) {
    throw_errno(env, errno, "Cannot create directory", dir);
    return NULL;
  }
  /* Try to make it shared first; EINVAL means it is not a mount point yet (iproute2's trick),
   * so bind it onto itself and try again. */
  if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) == 0) return NULL;
  if (errno != EINVAL) {
    throw_errno(env, errno, "Cannot make mount shared", dir);
    return NULL;
  }
  if (mount(dir, dir, "none", MS_BIND | MS_REC, NULL) < 0) {
    throw_errno(env, errno, "Cannot bind-mount directory onto itself", dir);
    return NULL;
  }
  if (mount("", dir, "none", MS_SHARED | MS_REC, NULL) < 0) {
    throw_errno(env, errno, "Cannot make mount shared", dir);
    return NULL;
  }
  return NULL;
}

/* openInNetns(nsPath: string | null, filePath: string, flags: number): number */
static napi_value OpenInNetns(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  char ns[PATH_BUF], path[PATH_BUF];
  bool has_ns;
  if (!get_path(env, argv[0], ns, sizeof ns, &has_ns)) return NULL;
  if (!get_path(env, argv[1], path, sizeof path, NULL)) return NULL;
  int32_t flags;
  if (napi_get_value_int32(env, argv[2], &flags) != napi_ok) {
    throw_type(env, "Expected open flags");
    return NULL;
  }
  struct job j = {.kind = JOB_OPEN, .ns_path = has_ns ? ns : NULL, .path = path, .flags = flags};
  if (!run_job(env, &j)) return NULL;
  napi_value out;
  napi_create_int32(env, j.result, &out);
  return out;
}

/* closeFd(fd: number): void — close(2) directly. Node's fs.closeSync in a worker thread warns
 * about fds it did not open itself ("unmanaged mode"); the addon's fds are ours to close. */
static napi_value CloseFd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t fd;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    throw_type(env, "Expected a file descriptor");
    return NULL;
  }
  /* EINTR on close still frees the fd on Linux: never retry. */
  if (close(fd) < 0 && errno != EINTR) throw_errno(env, errno, "Cannot close file descriptor", NULL);
  return NULL;
}

/* peerCred(fd: number): { uid, gid, pid } — SO_PEERCRED of a connected unix socket: the
 * credentials the peer had when it called connect(2), kept by the kernel (they cannot be forged
 * by the peer). Node's net.Socket has no way to read them. One getsockopt, never blocks. */
static napi_value PeerCred(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int32_t fd;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok) {
    throw_type(env, "Expected a file descriptor");
    return NULL;
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
    throw_errno(env, errno, "Cannot read the peer credentials of a socket", NULL);
    return NULL;
  }
  napi_value out, uid, gid, pid;
  napi_create_object(env, &out);
  napi_create_uint32(env, cred.uid, &uid);
  napi_create_uint32(env, cred.gid, &gid);
  napi_create_int32(env, cred.pid, &pid);
  napi_set_named_property(env, out, "uid", uid);
  napi_set_named_property(env, out, "gid", gid);
  napi_set_named_property(env, out, "pid", pid);
  return out;
}

/* ---- libnftables ---- */

/* One nft_ctx per addon instance: an instance belongs to one Node environment, which runs on
 * one thread, so this is the per-thread context libnftables needs (a ctx is not thread-safe).
 * It acts in that thread's netns: the daemon's, because the worker never calls setns. */
struct instance {
  struct nft_ctx *nft;
};

static void instance_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct instance *in = data;
  if (in->nft) nft_ctx_free(in->nft);
  free(in);
}

/* nftRun(script: string, json: boolean, terse?: boolean): { output: string } */
static napi_value NftRun(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  size_t argc = 3;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 2) {
    throw_type(env, "Missing arguments");
    return NULL;
  }
  size_t n;
  if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &n) != napi_ok) {
    throw_type(env, "Expected an nftables script");
    return NULL;
  }
  bool json = false;
  napi_get_value_bool(env, argv[1], &json);
  bool terse = false;
  if (argc > 2) napi_get_value_bool(env, argv[2], &terse);
  struct instance *in = NULL;
  napi_get_instance_data(env, (void **)&in);
  if (in->nft == NULL) {
    in->nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (in->nft == NULL) {
      throw_errno(env, ENOMEM, "Cannot create nftables context", NULL);
      return NULL;
    }
    nft_ctx_buffer_output(in->nft);
    nft_ctx_buffer_error(in->nft);
  }
  char *script = malloc(n + 1);
  if (script == NULL) {
    throw_errno(env, ENOMEM, "Cannot run nftables script", NULL);
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], script, n + 1, &n);
  /* With the JSON output flag libnftables parses JSON input first and falls back to text. */
  nft_ctx_output_set_flags(in->nft,
                           (json ? NFT_CTX_OUTPUT_JSON : 0) | (terse ? NFT_CTX_OUTPUT_TERSE : 0));
  int rc = nft_run_cmd_from_buffer(in->nft, script);
  int err;
  free(script);
  /* Reading a buffer also resets it, so a failure never leaks into the next call. */
  const char *out = nft_ctx_get_output_buffer(in->nft);
  const char *errtext = nft_ctx_get_error_buffer(in->nft);
  if (rc != 0) {
    /* errno after a failed run is not reliable (parse errors leave stale values), but kernel
     * refusals are reported as "Could not process rule: <strerror>"; recover the errno from
     * that text, and call everything else (syntax, semantics) EINVAL. */
    (void)err;
    err = EINVAL;
    const char *hit = errtext ? strstr(errtext, "Could not process rule: ") : NULL;
    if (hit != NULL) {
      hit += strlen("Could not process rule: ");
      for (int e = 1; e < 134; e++) {
        const char *s = strerror(e);
        if (strncmp(hit, s, strlen(s)) == 0) {
          err = e;
          break;
        }
      }
    }
    const char *name = strerrorname_np(err);
    size_t len = errtext ? strlen(errtext) : 0;
    while (len > 0 && (errtext[len - 1] == '\n' || errtext[len - 1] == ' ')) len--;
    napi_value code, text, error, num;
    napi_create_string_utf8(env, name ? name : "EUNKNOWN", NAPI_AUTO_LENGTH, &code);
    if (len > 0)
      napi_create_string_utf8(env, errtext, len, &text);
    else
      napi_create_string_utf8(env, strerror(err), NAPI_AUTO_LENGTH, &text);
    napi_create_error(env, code, text, &error);
    napi_create_int32(env, err, &num);
    napi_set_named_property(env, error, "errno", num);
    napi_throw(env, error);
    return NULL;
  }
  napi_value result, output;
  napi_create_object(env, &result);
  napi_create_string_utf8(env, out ? out : "", NAPI_AUTO_LENGTH, &output);
  napi_set_named_property(env, result, "output", output);
  return result;
}

/* ---- DNS fast path: a UDP socket served by a native thread ---- */

/*
 * udpFast*: the embedded resolver's UDP listeners. The socket is created and bound on the
 * calling thread (the daemon's namespace: no setns). A pthread per socket loops on recvmmsg
 * (batches of up to FAST_BATCH) and answers queries it has a remembered answer for straight
 * away, with sendmmsg; everything else goes to JS through a threadsafe function (bounded queue,
 * never blocking: a full queue drops the packet, the client retries), and JS answers through
 * udpFastSend.
 *
 * The answer table is filled by JS: key = source address + the query's bytes after its id
 * (flags, counts, question, EDNS record), exactly as JS's own answer memory keys them; value =
 * one encoded answer, or one per rotation start of a round-robin name, sent in turn. The table
 * is direct-mapped (FAST_SLOTS entries, a new entry replaces whatever shared its slot), so it
 * is bounded; one mutex guards it; JS clears it synchronously on every name-table change, so no
 * stale answer is looked up after the change's API call returns.
 *
 * Shutdown: a stop flag, shutdown(2) (which wakes a recvmmsg blocked on an unconnected UDP
 * socket) and SO_RCVTIMEO as a backstop; then join, close, free.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/time.h>

#define FAST_BATCH 64
#define FAST_SLOTS 4096
#define FAST_BUF 4096       /* queries and remembered answers up to this size (QUERY_MAX) */
#define FAST_ROTATIONS 32   /* most answers per entry (round-robin starting points) */
#define FAST_QUEUE 1024     /* packets waiting for JS; more are dropped */

struct fast_entry {
  uint32_t hash;
  uint8_t family;
  uint8_t addr[16];
  uint16_t klen;
  uint16_t n;
  uint32_t turn;
  uint8_t *key;
  uint16_t alen[FAST_ROTATIONS];
  uint8_t *ans[FAST_ROTATIONS];
  /* key and answers follow in the same allocation */
};

struct fast_sock {
  napi_env env;
  int fd;
  int family;
  pthread_t thread;
  bool started;
  bool closed;
  atomic_bool stop;
  pthread_mutex_t lock;
  napi_threadsafe_function tsfn;
  struct fast_entry *slots[FAST_SLOTS];
  /* counters, written by the thread, read by JS */
  atomic_uint_fast64_t received, hits, dropped;
};

/* A packet handed to JS: its own copy, so it outlives nothing. */
struct fast_pkt {
  uint16_t len;
  uint16_t port;
  char addr[INET6_ADDRSTRLEN];
  uint8_t data[];
};

static uint32_t fast_hash(uint8_t family, const uint8_t *addr, const uint8_t *key, size_t klen) {
  uint32_t h = 2166136261u ^ family;
  for (int i = 0; i < 16; i++) h = (h ^ addr[i]) * 16777619u;
  for (size_t i = 0; i < klen; i++) h = (h ^ key[i]) * 16777619u;
  return h;
}

/* Source address of a received packet as (family, 16 bytes). */
static void fast_peer(const struct sockaddr_storage *ss, uint8_t *family, uint8_t *addr) {
  memset(addr, 0, 16);
  if (ss->ss_family == AF_INET6) {
    *family = 6;
    memcpy(addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
  } else {
    *family = 4;
    memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
  }
}

static void fast_clear_locked(struct fast_sock *s) {
  for (int i = 0; i < FAST_SLOTS; i++) {
    free(s->slots[i]);
    s->slots[i] = NULL;
  }
}

/* Runs on the JS thread: hands one packet to the JS callback. env is NULL on teardown. */
static void fast_call_js(napi_env env, napi_value cb, void *context, void *data) {
  (void)context;
  struct fast_pkt *p = data;
  if (env != NULL && cb != NULL) {
    napi_value argv[3], undef;
    void *copy;
    napi_create_buffer_copy(env, p->len, p->data, &copy, &argv[0]);
    napi_create_string_utf8(env, p->addr, NAPI_AUTO_LENGTH, &argv[1]);
    napi_create_uint32(env, p->port, &argv[2]);
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, cb, 3, argv, NULL);
  }
  free(p);
}

static void fast_to_js(struct fast_sock *s, const uint8_t *buf, size_t len,
                       const struct sockaddr_storage *ss) {
  struct fast_pkt *p = malloc(sizeof *p + len);
  if (p == NULL) {
    s->dropped++;
    return;
  }
  p->len = (uint16_t)len;
  memcpy(p->data, buf, len);
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    inet_ntop(AF_INET6, &a->sin6_addr, p->addr, sizeof p->addr);
    p->port = ntohs(a->sin6_port);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    inet_ntop(AF_INET, &a->sin_addr, p->addr, sizeof p->addr);
    p->port = ntohs(a->sin_port);
  }
  /* Non-blocking: a full queue (JS is behind) or a closing function drops the packet. */
  if (napi_call_threadsafe_function(s->tsfn, p, napi_tsfn_nonblocking) != napi_ok) {
    free(p);
    s->dropped++;
  }
}

static void *fast_main(void *arg) {
  struct fast_sock *s = arg;
  /* Static per thread would do, but the heap keeps the thread's stack small and fixed. */
  uint8_t(*in)[FAST_BUF] = malloc((size_t)FAST_BATCH * FAST_BUF);
  uint8_t(*out)[FAST_BUF] = malloc((size_t)FAST_BATCH * FAST_BUF);
  struct sockaddr_storage *peers = calloc(FAST_BATCH, sizeof *peers);
  struct mmsghdr *rmsg = calloc(FAST_BATCH, sizeof *rmsg);
  struct mmsghdr *smsg = calloc(FAST_BATCH, sizeof *smsg);
  struct iovec *riov = calloc(FAST_BATCH, sizeof *riov);
  struct iovec *siov = calloc(FAST_BATCH, sizeof *siov);
  if (!in || !out || !peers || !rmsg || !smsg || !riov || !siov) goto done;
  while (!atomic_load(&s->stop)) {
    for (int i = 0; i < FAST_BATCH; i++) {
      riov[i].iov_base = in[i];
      riov[i].iov_len = FAST_BUF;
      memset(&rmsg[i].msg_hdr, 0, sizeof rmsg[i].msg_hdr);
      rmsg[i].msg_hdr.msg_iov = &riov[i];
      rmsg[i].msg_hdr.msg_iovlen = 1;
      rmsg[i].msg_hdr.msg_name = &peers[i];
      rmsg[i].msg_hdr.msg_namelen = sizeof peers[i];
    }
    /* Blocks for the first packet, then takes whatever else is queued (MSG_WAITFORONE). */
    int n = recvmmsg(s->fd, rmsg, FAST_BATCH, MSG_WAITFORONE, NULL);
    if (n <= 0) continue; /* EAGAIN (SO_RCVTIMEO), EINTR, shutdown: check the stop flag */
    if (atomic_load(&s->stop)) break;
    s->received += (unsigned)n;
    int k = 0;
    bool miss[FAST_BATCH];
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < n; i++) {
      miss[i] = false;
      size_t len = rmsg[i].msg_len;
      /* Oversized (cut) and runt datagrams are JS's to judge and count. */
      if ((rmsg[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        s->dropped++;
        continue;
      }
      miss[i] = true;
      if (len < 12) continue;
      uint8_t family, addr[16];
      fast_peer(&peers[i], &family, addr);
      const uint8_t *key = in[i] + 2;
      size_t klen = len - 2;
      uint32_t h = fast_hash(family, addr, key, klen);
      struct fast_entry *e = s->slots[h % FAST_SLOTS];
      if (e == NULL || e->hash != h || e->family != family || e->klen != klen ||
          memcmp(e->addr, addr, 16) != 0 || memcmp(e->key, key, klen) != 0)
        continue;
      uint16_t which = e->n > 1 ? (uint16_t)(e->turn++ % e->n) : 0;
      memcpy(out[k], e->ans[which], e->alen[which]);
      out[k][0] = in[i][0];
      out[k][1] = in[i][1];
      siov[k].iov_base = out[k];
      siov[k].iov_len = e->alen[which];
      memset(&smsg[k].msg_hdr, 0, sizeof smsg[k].msg_hdr);
      smsg[k].msg_hdr.msg_iov = &siov[k];
      smsg[k].msg_hdr.msg_iovlen = 1;
      smsg[k].msg_hdr.msg_name = &peers[i];
      smsg[k].msg_hdr.msg_namelen = rmsg[i].msg_hdr.msg_namelen;
      k++;
      miss[i] = false;
    }
    pthread_mutex_unlock(&s->lock);
    s->hits += (unsigned)k;
    for (int sent = 0; sent < k;) {
      int r = sendmmsg(s->fd, smsg + sent, (unsigned)(k - sent), MSG_DONTWAIT);
      if (r > 0) {
        sent += r;
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      /* A send error (buffer full, peer gone) loses this one answer: the client retries. */
      s->dropped++;
      sent++;
    }
    for (int i = 0; i < n; i++)
      if (miss[i]) fast_to_js(s, in[i], rmsg[i].msg_len, &peers[i]);
  }
done:
  free(in);
  free(out);
  free(peers);
  free(rmsg);
  free(smsg);
  free(riov);
  free(siov);
  return NULL;
}

static void fast_cleanup_hook(void *arg);

static void fast_stop(struct fast_sock *s) {
  if (s->closed) return;
  s->closed = true;
  napi_remove_env_cleanup_hook(s->env, fast_cleanup_hook, s);
  atomic_store(&s->stop, true);
  if (s->started) {
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(s->thread, NULL);
  }
  /* Packets still queued for JS are freed by fast_call_js with env == NULL. */
  napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
  close(s->fd);
  pthread_mutex_lock(&s->lock);
  fast_clear_locked(s);
  pthread_mutex_unlock(&s->lock);
}

/* Environment teardown (exit without close): stop the thread before Node frees the threadsafe
 * function. Registered after the function, so it runs first (hooks run last-in, first-out). */
static void fast_cleanup_hook(void *arg) { fast_stop(arg); }

static void fast_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  struct fast_sock *s = data;
  fast_stop(s);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

static bool fast_parse_addr(napi_env env, napi_value v, uint16_t port, struct sockaddr_storage *ss,
                            socklen_t *len) {
  char text[INET6_ADDRSTRLEN + 1];
  if (!get_path(env, v, text, sizeof text, NULL)) return false;
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, text, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    *len = sizeof *a4;
    return true;
  }
  if (inet_pton(AF_INET6, text, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    *len = sizeof *a6;
    return true;
  }
  throw_type(env, "Expected an IP address literal");
  return false;
}

static bool fast_get(napi_env env, napi_value v, struct fast_sock **s) {
  if (napi_get_value_external(env, v, (void **)s) != napi_ok || *s == NULL) {
    throw_type(env, "Expected a fast UDP socket");
    return false;
  }
  if ((*s)->closed) {
    throw_errno(env, EBADF, "Fast UDP socket is closed", NULL);
    return false;
  }
  return true;
}

static bool fast_get_port(napi_env env, napi_value v, uint16_t *port) {
  uint32_t p;
  if (napi_get_value_uint32(env, v, &p) != napi_ok || p > 65535) {
    throw_type(env, "Expected a port number");
    return false;
  }
  *port = (uint16_t)p;
  return true;
}

/* udpFastOpen(address: string, port: number, onMessage: (msg, address, port) => void): external */
static napi_value UdpFastOpen(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  uint16_t port;
  struct sockaddr_storage ss;
  socklen_t sslen;
  if (!fast_get_port(env, argv[1], &port)) return NULL;
  if (!fast_parse_addr(env, argv[0], port, &ss, &sslen)) return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  if (t != napi_function) {
    throw_type(env, "Expected a message callback");
    return NULL;
  }
  struct fast_sock *s = calloc(1, sizeof *s);
  if (s == NULL) {
    throw_errno(env, ENOMEM, "Cannot open fast UDP socket", NULL);
    return NULL;
  }
  s->family = ss.ss_family;
  s->fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s->fd < 0) {
    throw_errno(env, errno, "Cannot open UDP socket", NULL);
    free(s);
    return NULL;
  }
  int one = 1;
  if (ss.ss_family == AF_INET6) setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(s->fd, (struct sockaddr *)&ss, sslen) < 0) {
    int err = errno;
    close(s->fd);
    free(s);
    throw_errno(env, err, "Cannot bind UDP socket", NULL);
    return NULL;
  }
  /* Backstop for shutdown: the thread re-checks its stop flag at least this often. */
  struct timeval tv = {.tv_sec = 0, .tv_usec = 500000};
  setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  pthread_mutex_init(&s->lock, NULL);
  napi_value name;
  napi_create_string_utf8(env, "cnm-dns-fast", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[2], NULL, name, FAST_QUEUE, 1, NULL, NULL, NULL,
                                      fast_call_js, &s->tsfn) != napi_ok) {
    close(s->fd);
    pthread_mutex_destroy(&s->lock);
    free(s);
    throw_errno(env, ENOMEM, "Cannot create the fast UDP callback", NULL);
    return NULL;
  }
  int rc = pthread_create(&s->thread, NULL, fast_main, s);
  if (rc != 0) {
    napi_release_threadsafe_function(s->tsfn, napi_tsfn_abort);
    close(s->fd);
    pthread_mutex_destroy(&s->lock);
    free(s);
    throw_errno(env, rc, "Cannot start the fast UDP thread", NULL);
    return NULL;
  }
  s->started = true;
  s->env = env;
  napi_add_env_cleanup_hook(env, fast_cleanup_hook, s);
  napi_value out;
  if (napi_create_external(env, s, fast_finalize, NULL, &out) != napi_ok) {
    fast_finalize(env, s, NULL);
    throw_errno(env, ENOMEM, "Cannot wrap the fast UDP socket", NULL);
    return NULL;
  }
  return out;
}

/* udpFastSend(sock, msg: Buffer, address: string, port: number): boolean — false when the
 * kernel refused the datagram at once (buffer full, unreachable); never blocks. */
static napi_value UdpFastSend(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!get_args(env, info, 4, argv)) return NULL;
  struct fast_sock *s;
  if (!fast_get(env, argv[0], &s)) return NULL;
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    throw_type(env, "Expected a Buffer");
    return NULL;
  }
  uint16_t port;
  struct sockaddr_storage ss;
  socklen_t sslen;
  if (!fast_get_port(env, argv[3], &port)) return NULL;
  if (!fast_parse_addr(env, argv[2], port, &ss, &sslen)) return NULL;
  ssize_t r = sendto(s->fd, data, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sslen);
  napi_value out;
  napi_get_boolean(env, r >= 0, &out);
  return out;
}

/* udpFastRemember(sock, source: string, key: Buffer, answers: Buffer[], start: number): boolean
 * — key is the query after its 2-byte id; false when the entry does not fit the table's limits
 * (too many answers, too large) and was not stored. */
static napi_value UdpFastRemember(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  struct fast_sock *s;
  if (!fast_get(env, argv[0], &s)) return NULL;
  struct sockaddr_storage ss;
  socklen_t sslen;
  if (!fast_parse_addr(env, argv[1], 0, &ss, &sslen)) return NULL;
  void *key;
  size_t klen;
  if (napi_get_buffer_info(env, argv[2], &key, &klen) != napi_ok) {
    throw_type(env, "Expected a Buffer key");
    return NULL;
  }
  bool is_array = false;
  napi_is_array(env, argv[3], &is_array);
  uint32_t n = 0, start = 0;
  if (!is_array || napi_get_array_length(env, argv[3], &n) != napi_ok) {
    throw_type(env, "Expected an array of answers");
    return NULL;
  }
  napi_get_value_uint32(env, argv[4], &start);
  napi_value out;
  if (n == 0 || n > FAST_ROTATIONS || klen < 10 || klen > FAST_BUF - 2) {
    napi_get_boolean(env, false, &out);
    return out;
  }
  void *ans[FAST_ROTATIONS];
  size_t alen[FAST_ROTATIONS], total = klen;
  for (uint32_t i = 0; i < n; i++) {
    napi_value el;
    napi_get_element(env, argv[3], i, &el);
    if (napi_get_buffer_info(env, el, &ans[i], &alen[i]) != napi_ok) {
      throw_type(env, "Expected Buffer answers");
      return NULL;
    }
    if (alen[i] < 12 || alen[i] > FAST_BUF) {
      napi_get_boolean(env, false, &out);
      return out;
    }
    total += alen[i];
  }
  struct fast_entry *e = malloc(sizeof *e + total);
  if (e == NULL) {
    throw_errno(env, ENOMEM, "Cannot remember a DNS answer", NULL);
    return NULL;
  }
  memset(e, 0, sizeof *e);
  fast_peer(&ss, &e->family, e->addr);
  uint8_t *p = (uint8_t *)(e + 1);
  e->key = p;
  e->klen = (uint16_t)klen;
  memcpy(p, key, klen);
  p += klen;
  e->n = (uint16_t)n;
  e->turn = start;
  for (uint32_t i = 0; i < n; i++) {
    e->ans[i] = p;
    e->alen[i] = (uint16_t)alen[i];
    memcpy(p, ans[i], alen[i]);
    p += alen[i];
  }
  e->hash = fast_hash(e->family, e->addr, e->key, klen);
  pthread_mutex_lock(&s->lock);
  struct fast_entry **slot = &s->slots[e->hash % FAST_SLOTS];
  free(*slot);
  *slot = e;
  pthread_mutex_unlock(&s->lock);
  napi_get_boolean(env, true, &out);
  return out;
}

/* udpFastClear(sock): void — forgets every remembered answer before returning. */
static napi_value UdpFastClear(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct fast_sock *s;
  if (!fast_get(env, argv[0], &s)) return NULL;
  pthread_mutex_lock(&s->lock);
  fast_clear_locked(s);
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

/* udpFastStats(sock): { received, hits, dropped } — counters since open. */
static napi_value UdpFastStats(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct fast_sock *s;
  if (napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || s == NULL) {
    throw_type(env, "Expected a fast UDP socket");
    return NULL;
  }
  napi_value out, v;
  napi_create_object(env, &out);
  napi_create_double(env, (double)atomic_load(&s->received), &v);
  napi_set_named_property(env, out, "received", v);
  napi_create_double(env, (double)atomic_load(&s->hits), &v);
  napi_set_named_property(env, out, "hits", v);
  napi_create_double(env, (double)atomic_load(&s->dropped), &v);
  napi_set_named_property(env, out, "dropped", v);
  return out;
}

/* udpFastClose(sock): void — stops the thread (joined before returning) and closes the socket;
 * a second close is a no-op. */
static napi_value UdpFastClose(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct fast_sock *s;
  if (napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || s == NULL) {
    throw_type(env, "Expected a fast UDP socket");
    return NULL;
  }
  fast_stop(s);
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  struct instance *in = calloc(1, sizeof *in);
  if (in == NULL) return NULL;
  napi_set_instance_data(env, in, instance_free, NULL);
  napi_property_descriptor props[] = {
      {"openNetlink", NULL, OpenNetlink, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netnsCreate", NULL, NetnsCreate, NULL, NULL, NULL, napi_enumerable, NULL},
      {"netnsDelete", NULL, NetnsDelete, NULL, NULL, NULL, napi_enumerable, NULL},
      {"makeSharedDir", NULL, MakeSharedDir, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openInNetns", NULL, OpenInNetns, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, CloseFd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"nftRun", NULL, NftRun, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peerCred", NULL, PeerCred, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpFastOpen", NULL, UdpFastOpen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpFastSend", NULL, UdpFastSend, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpFastRemember", NULL, UdpFastRemember, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpFastClear", NULL, UdpFastClear, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpFastStats", NULL, UdpFastStats, NULL, NULL, NULL, napi_enumerable, NULL},
      {"udpFastClose", NULL, UdpFastClose, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
