use clap::Parser;
use modelguard::cli::{run, Cli};

fn main() {
    // The jailed worker is this binary re-executed; it takes no flags a user would type.
    #[cfg(target_os = "linux")]
    {
        let mut args = std::env::args();
        if args.nth(1).as_deref() == Some("__worker") {
            modelguard::jail::worker::main(&args.next().unwrap_or_default());
        }
    }
    let cli = Cli::parse();
    #[cfg(target_os = "linux")]
    if !cli.serves() {
        modelguard::jail::sigpipe::exit_quietly_on_closed_stdout();
    }
    std::process::exit(run(cli));
}
