// Placeholder until the page is built.
import { Text } from '@mantine/core';

export default function Page() {
  return <Text>Coming soon.</Text>;
}
