/**
 * Turns the state machine in a synthesized template back into plain ASL, so that the local runner
 * (aws-local-stepfunctions) and the tests execute exactly what CDK deploys, never a hand-kept copy.
 */

/** A JSON value as it appears in a template. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** One ASL state: `Type` plus whatever its type allows. */
export type AslState = { readonly Type: string } & { readonly [key: string]: JsonValue };

/** An Amazon States Language definition (or the item processor of a Map). */
export interface AslDefinition {
  readonly StartAt: string;
  readonly States: { readonly [name: string]: AslState };
  readonly [key: string]: JsonValue;
}

/** Placeholder ARN of the `failover-steps` function in extracted definitions. */
export const PLACEHOLDER_FUNCTION_ARN = 'arn:aws:lambda:us-east-1:123456789012:function:halo-failover-steps';

/** How template references are replaced by literals. */
export interface ExtractOptions {
  /** Logical id of the state machine when the template holds more than one. */
  readonly logicalId?: string;
  /** ARN given to every `Fn::GetAtt [<Lambda function>, Arn]`. */
  readonly functionArn?: string;
  readonly region?: string;
  readonly account?: string;
  readonly partition?: string;
}

type Json = { [key: string]: JsonValue };

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Resolves the state machine's DefinitionString in `template` to ASL with placeholder ARNs. */
export function extractDefinition(template: unknown, options: ExtractOptions = {}): AslDefinition {
  if (!isObject(template) || !isObject(template.Resources)) throw new Error('not a CloudFormation template');
  const resources = template.Resources;
  const machines = Object.entries(resources).filter(
    ([id, r]) =>
      isObject(r) &&
      r.Type === 'AWS::StepFunctions::StateMachine' &&
      (options.logicalId === undefined || id === options.logicalId),
  );
  const [machine, ...others] = machines;
  if (machine === undefined) throw new Error('the template has no AWS::StepFunctions::StateMachine');
  if (others.length > 0) throw new Error('the template has several state machines: pass options.logicalId');
  const [machineId, resource] = machine;
  const properties = isObject(resource) ? resource.Properties : undefined;
  if (!isObject(properties)) throw new Error(`${machineId} has no Properties`);
  if (properties.DefinitionSubstitutions !== undefined) {
    throw new Error(`${machineId} uses DefinitionSubstitutions, which extractDefinition does not resolve`);
  }

  const pseudo: Record<string, string> = {
    'AWS::Region': options.region ?? 'us-east-1',
    'AWS::AccountId': options.account ?? '123456789012',
    'AWS::Partition': options.partition ?? 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
  };
  const functionArn = options.functionArn ?? PLACEHOLDER_FUNCTION_ARN;

  const resolve = (value: JsonValue): string => {
    if (typeof value === 'string') return value;
    if (isObject(value)) {
      const join = value['Fn::Join'];
      if (Array.isArray(join)) {
        const [separator, parts] = join;
        if (typeof separator !== 'string' || !Array.isArray(parts)) throw new Error('malformed Fn::Join');
        return parts.map(resolve).join(separator);
      }
      const ref = value.Ref;
      if (typeof ref === 'string') {
        const known = pseudo[ref];
        if (known !== undefined) return known;
        throw new Error(`cannot resolve Ref ${ref} in the definition`);
      }
      const getAtt = value['Fn::GetAtt'];
      if (Array.isArray(getAtt)) {
        const [logicalId, attribute] = getAtt;
        const target = typeof logicalId === 'string' ? resources[logicalId] : undefined;
        if (isObject(target) && target.Type === 'AWS::Lambda::Function' && attribute === 'Arn') {
          return functionArn;
        }
        throw new Error(`cannot resolve Fn::GetAtt ${JSON.stringify(getAtt)} in the definition`);
      }
    }
    throw new Error(`cannot resolve ${JSON.stringify(value)} in the definition`);
  };

  const definitionString = properties.DefinitionString;
  if (definitionString === undefined) throw new Error(`${machineId} has no DefinitionString`);
  const parsed: unknown = JSON.parse(resolve(definitionString));
  if (!isObject(parsed) || typeof parsed.StartAt !== 'string' || !isObject(parsed.States)) {
    throw new Error(`${machineId}: the definition has no StartAt/States`);
  }
  return parsed as AslDefinition;
}

/** Key under which {@link adaptForLocalRunner} hoists a Task's timeout into its Parameters. */
export const LOCAL_TIMEOUT_KEY = 'HaloLocalTimeoutSeconds';

/**
 * The definition as aws-local-stepfunctions 3 must be given it. That runner resolves `TimeoutSecondsPath`
 * against the Task's Parameters, where AWS resolves it against the state input; a callback Task's
 * Parameters (`{FunctionName, Payload}`) do not hold the incident's timing, so every callback would fail
 * with States.Runtime locally. For each Task with a TimeoutSecondsPath this copies the value into its
 * Parameters (next to FunctionName, never into Payload, so step handlers see the same request) and
 * points TimeoutSecondsPath at that copy. The timeout is read from the same input at the same moment as
 * in AWS; nothing else changes.
 */
export function adaptForLocalRunner(definition: AslDefinition): AslDefinition {
  const adaptStates = (states: AslDefinition['States']): AslDefinition['States'] =>
    Object.fromEntries(Object.entries(states).map(([name, state]) => [name, adaptState(name, state)]));

  const adaptState = (name: string, state: AslState): AslState => {
    let adapted: AslState = state;
    const processor = state.ItemProcessor;
    if (isObject(processor) && isObject(processor.States)) {
      const states = processor.States as AslDefinition['States'];
      adapted = { ...adapted, ItemProcessor: { ...processor, States: adaptStates(states) } };
    }
    const branches = state.Branches;
    if (Array.isArray(branches)) {
      adapted = {
        ...adapted,
        Branches: branches.map((branch) =>
          isObject(branch) && isObject(branch.States)
            ? { ...branch, States: adaptStates(branch.States as AslDefinition['States']) }
            : branch,
        ),
      };
    }
    const path = state.TimeoutSecondsPath;
    if (state.Type !== 'Task' || typeof path !== 'string') return adapted;
    const parameters = state.Parameters;
    if (!isObject(parameters) || !('Payload' in parameters)) {
      // A request-response Task's Parameters are the step's payload: a key added there would reach the handler.
      throw new Error(
        `${name}: TimeoutSecondsPath is only adapted on callback Tasks ({FunctionName, Payload})`,
      );
    }
    return {
      ...adapted,
      Parameters: { ...parameters, [`${LOCAL_TIMEOUT_KEY}.$`]: path },
      TimeoutSecondsPath: `$.${LOCAL_TIMEOUT_KEY}`,
    };
  };

  return { ...definition, States: adaptStates(definition.States) };
}
