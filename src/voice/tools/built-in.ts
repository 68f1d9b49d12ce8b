// The built-in tools' names (agent.ts implements them), in a file of their own so that the settings service can
// refuse a tenant tool by one of these names without importing the agent (which imports the settings' types).

/** Names a tenant's tool cannot take. */
export const BUILT_IN_TOOL_NAMES = ['end_call', 'transfer_call', 'search_knowledge'] as const;
