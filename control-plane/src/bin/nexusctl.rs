//! `nexusctl`: see [`nexus_control_plane::ctl`].

fn main() -> std::process::ExitCode {
    nexus_control_plane::ctl::main()
}
