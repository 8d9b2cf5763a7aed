//! `export`: the registry (or some contexts) as the declarative file,
//! printed as the API wrote it.

use crate::ctl::cli::args::{ExportArgs, FileFormat};
use crate::ctl::client::{Client, CtlError, exit, seg};

pub(crate) async fn run(client: &Client, args: ExportArgs) -> Result<u8, CtlError> {
    let mut path = "/api/admin/export".to_owned();
    if !args.context.is_empty() {
        path.push_str(&format!("?context={}", seg(&args.context.join(","))));
    }
    let accept = match args.format {
        FileFormat::Yaml => "application/yaml",
        FileFormat::Json => "application/json",
    };
    let text = client.get_text(&path, accept).await?;
    print!("{text}");
    Ok(exit::OK)
}
