// What a subcommand receives from the parser: its own module, so that args.ts (which loads the commands) and commands/*.ts (which read these) do not import each other.

/** A subcommand's parsed command line (see parseCommandArgs in args.ts). */
export interface CommandArgs {
  help: boolean;
  config?: string;
  mailbox?: string;
  json: boolean;
  positionals: string[];
}
