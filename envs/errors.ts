/** rewardlab's small typed error hierarchy. Messages say what to fix. */
export class RewardlabError extends Error {
  constructor(
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** An id that is not registered; the message names the closest ids. */
export class UnknownIdError extends RewardlabError {}
/** A config, level, request or message that failed its schema. */
export class ValidationError extends RewardlabError {
  constructor(
    message: string,
    readonly errors: { path: string; message: string }[] = [],
  ) {
    super(message, errors);
  }
}
/** The contract was used in the wrong order (step before reset, step after the end). */
export class OrderError extends RewardlabError {}
/** Registering an id twice, or a malformed registration. */
export class RegistrationError extends RewardlabError {}
/** An action outside the action space. */
export class InvalidActionError extends RewardlabError {}
/** A level file that does not parse or validate; names the file and the problem. */
export class LevelError extends RewardlabError {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`level ${file}: ${problems.join("; ")}`, problems);
  }
}
