//! INFO's figures of the two Lua engines (`scripting::Scripting` for
//! EVAL, `scripting::functions::Functions` for FUNCTION), kept in the
//! `Keyspace` beside the engines as of their last change or call. Plain
//! data, here so that `db` does not import `scripting` for them
//! (`scripting` re-exports both).

/// INFO's view of the EVAL engine.
#[derive(Debug, Default, Clone, Copy)]
pub struct ScriptStats {
    /// `used_memory_vm_eval`.
    pub vm_memory: usize,
    /// `used_memory_scripts_eval`.
    pub scripts_memory: usize,
    /// `number_of_cached_scripts`.
    pub scripts: usize,
}

/// INFO's view of the functions.
#[derive(Debug, Default, Clone, Copy)]
pub struct FunctionStats {
    /// `used_memory_vm_functions`.
    pub vm_memory: usize,
    /// `used_memory_functions`.
    pub memory: usize,
    /// `number_of_functions`.
    pub functions: usize,
    /// `number_of_libraries`.
    pub libraries: usize,
}
