//! Busy scripts (Redis's `scriptInterrupt`, `scriptKill`, the BUSY
//! replies): the state of the script that runs now, shared by every
//! connection without the keyspace lock.
//!
//! A script runs under the keyspace lock on the thread of the connection
//! that sent it. A Lua count hook (every `HOOK_INSTRUCTIONS` instructions,
//! as Redis's `luaMaskCountHook`) compares the run time with
//! `busy-reply-threshold`; past it the script is *timed out*:
//!
//! - the hook hands the thread's tokio worker to a new thread
//!   (`block_in_place`), so the other connections keep being served while
//!   this thread goes on with the script;
//! - connections that find the keyspace lock taken and the script timed
//!   out stop waiting for the lock (`Shared::lock_unless_busy`) and answer
//!   each command outside it (`server::busy`): `-BUSY`, or the `allow-busy`
//!   commands that need no keyspace (AUTH, HELLO, MULTI, QUIT, SCRIPT KILL,
//!   FUNCTION KILL, SHUTDOWN); tasks that need the keyspace whatever
//!   happens (the cron, a disconnect) wait for it off the worker
//!   (`Shared::lock_ks`);
//! - SCRIPT KILL / FUNCTION KILL set the kill flag (`kill_running`), which
//!   the hook turns into Redis's "Script killed by user" error; SHUTDOWN
//!   NOSAVE sets it too, and the script's connection then drops its
//!   effects unlogged and closes, as Redis exits in the middle of it.

use crate::catalog::CmdError;
use crate::db::Keyspace;
use bytes::Bytes;
use mlua::ffi;
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// FUNCTION STATS of a busy function: what runs, and the library counts
/// (they cannot change while it runs). Taken by the hook when the run
/// becomes busy, so a run that stays short pays nothing for it.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// The function's name.
    pub name: String,
    /// The FCALL that runs it.
    pub command: Vec<Bytes>,
    pub libraries: usize,
    pub functions: usize,
}

/// Work another connection needs the keyspace for while a script is busy
/// (WATCH, UNWATCH, RESET, DISCARD and EXEC's abort drop or add WATCHes):
/// the script's hook runs it on the script's thread, with the keyspace the
/// script holds, between two Lua instructions.
/// The Lua heap limit without `maxmemory` (see [`lua_memory_limit`]).
pub const DEFAULT_LUA_MEMORY_LIMIT: usize = 1 << 30;
/// The least limit `maxmemory` gives (a small `maxmemory` still lets
/// ordinary scripts build their tables).
pub const MIN_LUA_MEMORY_LIMIT: usize = 32 << 20;

/// The heap limit of each Lua VM (the EVAL VM, the functions VM): Redis has
/// none (a runaway script grows until the allocator fails and the server
/// aborts); here an allocation past it fails, the script gets Lua's "not
/// enough memory" error and the VM collects its garbage and goes on. It is
/// `maxmemory` when set (at least `MIN_LUA_MEMORY_LIMIT`): the dataset's
/// own budget; 1 GiB otherwise.
pub fn lua_memory_limit(maxmemory: u64) -> usize {
    if maxmemory == 0 {
        DEFAULT_LUA_MEMORY_LIMIT
    } else {
        (maxmemory.min(usize::MAX as u64) as usize).max(MIN_LUA_MEMORY_LIMIT)
    }
}

/// What the count hook asks of the script that runs (given to `begin` by
/// the Lua engine, `commands::lua`, which owns the running script's
/// context): run a busy connection's job against the script's keyspace
/// (true when it ran), and the run's details for FUNCTION STATS.
#[derive(Clone, Copy)]
pub struct RunHooks {
    pub run_job: fn(JobFn) -> bool,
    pub info: fn() -> Option<RunInfo>,
}

pub type JobFn = Box<dyn FnOnce(&mut Keyspace) + Send>;

struct Job {
    id: u64,
    run: JobFn,
    /// Signalled once `run` ran; dropped unsignalled if it never will.
    done: mpsc::Sender<()>,
}

/// Lua instructions between two checks of the clock and the kill flag
/// (Redis's `lua_sethook(..., LUA_MASKCOUNT, 100000)`: well under a
/// millisecond of Lua).
const HOOK_INSTRUCTIONS: i32 = 100_000;

/// What kind of script runs: it decides the BUSY wording and which of
/// SCRIPT KILL / FUNCTION KILL may stop it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// EVAL, EVALSHA and their _RO forms.
    Eval,
    /// FCALL, FCALL_RO.
    Function,
}

const NONE: u8 = 0;
const EVAL: u8 = 1;
const FUNCTION: u8 = 2;

const KILL_NONE: u8 = 0;
/// SCRIPT KILL / FUNCTION KILL.
const KILL_USER: u8 = 1;
/// SHUTDOWN NOSAVE.
const KILL_SHUTDOWN: u8 = 2;

/// How a script's run ended, for the command that ran it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Normally,
    /// Stopped by SCRIPT KILL / FUNCTION KILL (the script's error says so).
    Killed,
    /// Stopped by SHUTDOWN NOSAVE: no reply, no logged effects.
    Shutdown,
}

pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// The running script, if any. One per server (`Shared::busy`).
pub struct ScriptBusy {
    /// What the hook may ask of the running script (`begin`'s).
    hooks: Mutex<Option<RunHooks>>,
    /// `NONE`, `EVAL` or `FUNCTION`.
    kind: AtomicU8,
    /// Past `busy-reply-threshold`: other clients are answered BUSY.
    timed_out: AtomicBool,
    /// `KILL_*`: asked to stop.
    kill: AtomicU8,
    /// The script ran a write command: SCRIPT KILL can no longer stop it.
    write_dirty: AtomicBool,
    /// `busy-reply-threshold` in ms (0: never busy).
    threshold_ms: AtomicU64,
    /// Microseconds from `epoch` to the script's start.
    start_us: AtomicU64,
    epoch: Instant,
    /// The Lua heap limit of every VM (`scripting::lua_memory_limit`).
    lua_limit: AtomicU64,
    /// Set when the run becomes busy (FUNCTION STATS).
    info: Mutex<Option<RunInfo>>,
    /// Jobs of other connections for the busy script's hook (`run_job`).
    jobs: Mutex<Vec<Job>>,
    next_job: AtomicU64,
}

impl Default for ScriptBusy {
    fn default() -> Self {
        ScriptBusy {
            hooks: Mutex::new(None),
            kind: AtomicU8::new(NONE),
            timed_out: AtomicBool::new(false),
            kill: AtomicU8::new(KILL_NONE),
            write_dirty: AtomicBool::new(false),
            threshold_ms: AtomicU64::new(5000),
            start_us: AtomicU64::new(0),
            epoch: Instant::now(),
            lua_limit: AtomicU64::new(lua_memory_limit(0) as u64),
            info: Mutex::new(None),
            jobs: Mutex::new(Vec::new()),
            next_job: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for ScriptBusy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptBusy")
            .field("running", &self.running())
            .field("timed_out", &self.timed_out.load(Ordering::Relaxed))
            .finish()
    }
}

thread_local! {
    /// The `ScriptBusy` of the script running on this thread (for the hook).
    static CURRENT: Cell<*const ScriptBusy> = const { Cell::new(std::ptr::null()) };
}

impl ScriptBusy {
    /// `busy-reply-threshold` (startup and CONFIG SET).
    pub fn set_threshold_ms(&self, ms: u64) {
        self.threshold_ms.store(ms, Ordering::Relaxed);
    }

    /// Marks a script of `kind` as running on this thread and arms the
    /// count hook of `lua` (the VM that runs it). The returned guard ends
    /// the run. Runs never nest: scripts cannot call EVAL or FCALL.
    pub fn begin<'a>(&'a self, kind: Kind, lua: &mlua::Lua, hooks: RunHooks) -> Running<'a> {
        *self.hooks.lock() = Some(hooks);
        self.write_dirty.store(false, Ordering::Relaxed);
        self.kill.store(KILL_NONE, Ordering::Relaxed);
        self.timed_out.store(false, Ordering::Relaxed);
        self.start_us
            .store(self.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
        let k = match kind {
            Kind::Eval => EVAL,
            Kind::Function => FUNCTION,
        };
        self.kind.store(k, Ordering::Release);
        CURRENT.with(|c| c.set(self));
        let state = lua_state(lua);
        if let Some(l) = state {
            // SAFETY: `l` is the VM's main state, used on this thread only
            // while the keyspace lock is held. Redis installs the hook
            // only with a threshold; here it also serves SHUTDOWN NOSAVE,
            // so it is always on (its cost is one call per 100k
            // instructions).
            unsafe { ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKCOUNT, HOOK_INSTRUCTIONS) };
        }
        Running { busy: self, state }
    }

    /// The running script's kind, whether or not it timed out.
    pub fn running(&self) -> Option<Kind> {
        match self.kind.load(Ordering::Acquire) {
            EVAL => Some(Kind::Eval),
            FUNCTION => Some(Kind::Function),
            _ => None,
        }
    }

    /// The BUSY error for other clients, while a script is timed out.
    pub fn busy_error(&self) -> Option<&'static str> {
        if !self.timed_out.load(Ordering::Acquire) {
            return None;
        }
        match self.running()? {
            Kind::Eval => Some(BUSY_EVAL),
            Kind::Function => Some(BUSY_FUNCTION),
        }
    }

    /// True while a script runs past `busy-reply-threshold`.
    pub fn is_timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Acquire) && self.running().is_some()
    }

    /// Milliseconds the running script has run (FUNCTION STATS).
    pub fn running_ms(&self) -> Option<u64> {
        self.running()?;
        let now = self.epoch.elapsed().as_micros() as u64;
        Some(now.saturating_sub(self.start_us.load(Ordering::Relaxed)) / 1000)
    }

    /// Sets the Lua heap limit from `maxmemory` (startup, CONFIG SET).
    pub fn set_maxmemory(&self, maxmemory: u64) {
        self.lua_limit
            .store(lua_memory_limit(maxmemory) as u64, Ordering::Relaxed);
    }

    /// The Lua heap limit VMs apply at their next run.
    pub fn lua_limit(&self) -> usize {
        self.lua_limit.load(Ordering::Relaxed) as usize
    }

    /// FUNCTION STATS' view of the busy run (None before it is busy).
    pub fn run_info(&self) -> Option<RunInfo> {
        self.info.lock().clone()
    }

    /// Runs `f` with the keyspace on the busy script's thread (its hook
    /// serves the queue between two Lua instructions). True once `f` ran;
    /// false when the script ended first (or is not busy): `f` did not
    /// run, the caller takes the keyspace lock instead.
    pub fn run_job(&self, f: JobFn) -> bool {
        if !self.is_timed_out() {
            return false;
        }
        let (tx, rx) = mpsc::channel();
        let id = self.next_job.fetch_add(1, Ordering::Relaxed);
        self.jobs.lock().push(Job {
            id,
            run: f,
            done: tx,
        });
        loop {
            match rx.recv_timeout(Duration::from_millis(10)) {
                Ok(()) => return true,
                Err(mpsc::RecvTimeoutError::Disconnected) => return false,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if self.is_timed_out() {
                        continue;
                    }
                    // The script ended (or is ending): take the job back
                    // unless the hook has it already.
                    let mut q = self.jobs.lock();
                    if let Some(pos) = q.iter().position(|j| j.id == id) {
                        q.remove(pos);
                        return false;
                    }
                    drop(q);
                    return rx.recv().is_ok();
                }
            }
        }
    }

    /// The hook's side of `run_job`.
    fn serve_jobs(&self) {
        let jobs = std::mem::take(&mut *self.jobs.lock());
        for job in jobs {
            let ran = self.hooks.lock().is_some_and(|h| (h.run_job)(job.run));
            if ran {
                let _ = job.done.send(());
            }
        }
    }

    /// The running script ran a write command (`SCRIPT_WRITE_DIRTY`).
    pub fn mark_write(&self) {
        self.write_dirty.store(true, Ordering::Relaxed);
    }

    /// SCRIPT KILL (`kind` Eval) or FUNCTION KILL (`kind` Function):
    /// Redis's `scriptKill`, with its replies and their order.
    pub fn kill_running(&self, kind: Kind) -> Result<(), CmdError> {
        let Some(running) = self.running() else {
            return Err(CmdError::new("NOTBUSY No scripts in execution right now."));
        };
        if self.write_dirty.load(Ordering::Relaxed) {
            return Err(CmdError::new(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            ));
        }
        match (kind, running) {
            (Kind::Eval, Kind::Function) => Err(CmdError::new(BUSY_FUNCTION)),
            (Kind::Function, Kind::Eval) => Err(CmdError::new(BUSY_EVAL)),
            _ => {
                let _ = self.kill.compare_exchange(
                    KILL_NONE,
                    KILL_USER,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                Ok(())
            }
        }
    }

    /// SHUTDOWN NOSAVE while a script runs: stops it whatever it wrote.
    pub fn kill_for_shutdown(&self) {
        self.kill.store(KILL_SHUTDOWN, Ordering::Release);
    }

    /// The hook's check: true when the script must stop.
    fn check(&self) -> bool {
        if !self.timed_out.load(Ordering::Relaxed) {
            let threshold = self.threshold_ms.load(Ordering::Relaxed);
            let kill = self.kill.load(Ordering::Acquire) != KILL_NONE;
            if !kill {
                let elapsed_us = (self.epoch.elapsed().as_micros() as u64)
                    .saturating_sub(self.start_us.load(Ordering::Relaxed));
                if threshold == 0 || elapsed_us < threshold.saturating_mul(1000) {
                    return false;
                }
            }
            if threshold != 0 || kill {
                *self.info.lock() = self.hooks.lock().and_then(|h| (h.info)());
                self.timed_out.store(true, Ordering::Release);
                tracing::warn!(
                    "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the {} command.",
                    threshold,
                    if self.running() == Some(Kind::Function) { "FUNCTION KILL" } else { "SCRIPT KILL" }
                );
            }
        }
        hand_off_worker();
        self.serve_jobs();
        match self.kill.load(Ordering::Acquire) {
            KILL_NONE => false,
            KILL_USER => {
                tracing::warn!("Lua script killed by user with SCRIPT KILL.");
                true
            }
            _ => true,
        }
    }
}

/// The end of a run (dropping it ends the run too, as `Ended::Normally`
/// would be read).
pub struct Running<'a> {
    busy: &'a ScriptBusy,
    state: Option<*mut ffi::lua_State>,
}

impl Running<'_> {
    /// Ends the run: how it ended.
    pub fn finish(self) -> Ended {
        match self.busy.kill.load(Ordering::Acquire) {
            KILL_USER => Ended::Killed,
            KILL_SHUTDOWN => Ended::Shutdown,
            _ => Ended::Normally,
        }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(l) = self.state {
            // SAFETY: as in `begin`.
            unsafe { ffi::lua_sethook(l, None, 0, 0) };
        }
        CURRENT.with(|c| c.set(std::ptr::null()));
        self.busy.timed_out.store(false, Ordering::Release);
        self.busy.kind.store(NONE, Ordering::Release);
        *self.busy.info.lock() = None;
        *self.busy.hooks.lock() = None;
        // Jobs the hook did not serve: their connections take the lock.
        drop(std::mem::take(&mut *self.busy.jobs.lock()));
        // A kill that arrived after the script's last hook is dropped
        // here, as `scriptResetRun` does.
        if self.busy.kill.load(Ordering::Relaxed) != KILL_SHUTDOWN {
            self.busy.kill.store(KILL_NONE, Ordering::Relaxed);
        }
    }
}

/// The state `lua` runs its calls on (the main state).
fn lua_state(lua: &mlua::Lua) -> Option<*mut ffi::lua_State> {
    let mut out: *mut ffi::lua_State = std::ptr::null_mut();
    // SAFETY: only reads the state pointer; pushes nothing.
    unsafe { lua.exec_raw::<()>((), |l| out = l) }.ok()?;
    (!out.is_null()).then_some(out)
}

/// Lets the other tasks of this tokio worker run on another thread while
/// this one goes on with the script (a no-op once handed off, and off a
/// multi-threaded runtime).
fn hand_off_worker() {
    use tokio::runtime::{Handle, RuntimeFlavor};
    if let Ok(RuntimeFlavor::MultiThread) = Handle::try_current().map(|h| h.runtime_flavor()) {
        tokio::task::block_in_place(|| {});
    }
}

/// Redis's `luaMaskCountHook`.
unsafe extern "C-unwind" fn count_hook(l: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return;
    }
    // SAFETY: `CURRENT` is set by `begin` and cleared by `Running`'s drop,
    // which outlives the script's run on this thread.
    let stop = unsafe { (*p).check() };
    if !stop {
        return;
    }
    // No Rust values with destructors live here: `lua_error` longjmps.
    // Every line from now on raises again, so `pcall` cannot keep the
    // script alive (Redis does the same).
    unsafe {
        ffi::lua_sethook(l, Some(count_hook), ffi::LUA_MASKLINE, 0);
        ffi::lua_newtable(l);
        ffi::lua_pushstring(l, c"err".as_ptr());
        ffi::lua_pushstring(l, c"ERR Script killed by user with SCRIPT KILL...".as_ptr());
        ffi::lua_settable(l, -3);
        ffi::lua_error(l);
    }
}
