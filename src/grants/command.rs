//! `grants`: the CREATE USER and GRANT statements for the daemon's own
//! database user, for this version and table prefix; with `--missing`,
//! only what the configured user lacks (after an upgrade).

use std::path::{Path, PathBuf};

use super::held::quote;
use super::{GrantsError, Uses, current, render};
use crate::config::Config;
use crate::database_inc::DatabaseSettings;

/// The user the package creates and the README names.
pub const DEFAULT_USER: &str = "piwigo-s3upload";

#[derive(Debug, Clone, Default, clap::Args)]
pub struct GrantsArgs {
    /// Piwigo's install directory: the database name and table prefix
    /// come from its local/config/database.inc.php [default: from the
    /// config file when it exists].
    #[arg(long)]
    pub piwigo_root: Option<PathBuf>,
    /// The database name (Piwigo's $conf['db_base']).
    #[arg(long)]
    pub database: Option<String>,
    /// Piwigo's table prefix ($prefixeTable).
    #[arg(long)]
    pub prefix: Option<String>,
    /// The daemon's database user [default: the user in the config's
    /// database_url, else piwigo-s3upload].
    #[arg(long)]
    pub user: Option<String>,
    /// The host the daemon connects from, as the database server sees it
    /// ('%' for any).
    #[arg(long, default_value = "localhost")]
    pub host: String,
    /// A file holding the new user's password: adds CREATE USER ...
    /// IDENTIFIED BY it. Without it, only the GRANTs run and CREATE USER
    /// is printed as a comment.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Only the GRANTs the configured database user lacks, asked of the
    /// database as that user (after an upgrade).
    #[arg(long)]
    pub missing: bool,
}

/// Where the statements go: database, prefix and user, and for which
/// features.
struct Target {
    database: String,
    prefix: String,
    user: Option<String>,
    uses: Uses,
}

/// Runs `grants`, printing the statements on stdout.
pub async fn run(config_path: &Path, args: GrantsArgs) -> Result<(), GrantsError> {
    if args.missing {
        return missing(config_path).await;
    }
    let target = target(config_path, &args)?;
    let user = args
        .user
        .clone()
        .or(target.user)
        .unwrap_or_else(|| DEFAULT_USER.into());
    let account = format!("{}@{}", quote(&user), quote(&args.host));
    println!(
        "-- Database privileges for piwigo-s3upload {} (database `{}`, table prefix `{}`).",
        env!("CARGO_PKG_VERSION"),
        target.database,
        target.prefix
    );
    println!(
        "-- Run them as a database administrator, e.g. `piwigo-s3upload grants ... | sudo mysql`."
    );
    println!("-- Nothing here writes to Piwigo's own tables.");
    if !target.uses.snapshots {
        println!(
            "-- The config has no [snapshots] section: Piwigo's tables are granted one by one. With snapshots, the user needs SELECT, LOCK TABLES, SHOW VIEW on the whole database (run `grants` again after adding the section)."
        );
    }
    match &args.password_file {
        Some(path) => {
            let password =
                std::fs::read_to_string(path).map_err(|source| GrantsError::PasswordFile {
                    path: path.clone(),
                    source,
                })?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(GrantsError::Usage(format!(
                    "{} is empty; write the password in it (e.g. `openssl rand -hex 24 > {}`)",
                    path.display(),
                    path.display()
                )));
            }
            println!(
                "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {};",
                quote(password)
            );
        }
        None => println!(
            "-- CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '...'; (pass --password-file FILE to include it)"
        ),
    }
    print!(
        "{}",
        render::script(
            &target.database,
            &target.prefix,
            &current(target.uses),
            &account
        )
    );
    Ok(())
}

fn target(config_path: &Path, args: &GrantsArgs) -> Result<Target, GrantsError> {
    let mut found = Target {
        database: String::new(),
        prefix: String::new(),
        user: None,
        uses: Uses::ALL,
    };
    if let Some(root) = &args.piwigo_root {
        let Some(path) = DatabaseSettings::find(root) else {
            return Err(GrantsError::Usage(format!(
                "no local/config/database.inc.php under {}; pass Piwigo's install directory, or --database and --prefix",
                root.display()
            )));
        };
        let settings = DatabaseSettings::read(&path)
            .map_err(|e| GrantsError::Usage(format!("{e}; or pass --database and --prefix")))?;
        found.database = settings.base.text;
        found.prefix = settings.prefix.text;
    } else if args.database.is_none() || args.prefix.is_none() {
        let config = Config::load(config_path).map_err(|e| {
            GrantsError::Usage(format!(
                "{e}; before `init`, say where Piwigo is: --piwigo-root DIR, or --database NAME --prefix PREFIX"
            ))
        })?;
        let url = url::Url::parse(config.database_url()).ok();
        found.database = url
            .as_ref()
            .map(|u| u.path().trim_start_matches('/').to_owned())
            .unwrap_or_default();
        found.user = url
            .map(|u| u.username().to_owned())
            .filter(|u| !u.is_empty());
        found.prefix = config.piwigo.table_prefix.clone();
        found.uses = Uses::of(&config);
    }
    if let Some(d) = &args.database {
        found.database = d.clone();
    }
    if let Some(p) = &args.prefix {
        found.prefix = p.clone();
    }
    if found.database.is_empty() {
        return Err(GrantsError::Usage(
            "the database name is unknown; pass --database NAME".into(),
        ));
    }
    if !found
        .prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
        || found.prefix.len() > 20
    {
        return Err(GrantsError::Usage(format!(
            "`{}` is not a Piwigo table prefix (up to 20 of A-Z a-z 0-9 _ $)",
            found.prefix
        )));
    }
    Ok(found)
}

/// What the configured user lacks, asked as that user.
async fn missing(config_path: &Path) -> Result<(), GrantsError> {
    let config = Config::load(config_path)?;
    let pool = crate::db::connect(config.database_url(), 1).await?;
    let t = crate::db::Tables::new(&config.piwigo.table_prefix);
    let missing = super::missing(&pool, &t, Uses::of(&config)).await;
    pool.close().await;
    let missing = missing?;
    if missing.grants.is_empty() {
        println!(
            "-- {} holds every privilege piwigo-s3upload {} needs",
            missing.account,
            env!("CARGO_PKG_VERSION")
        );
    } else {
        println!("{missing}");
    }
    Ok(())
}
