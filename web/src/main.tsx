// The console's entry: theme, notifications, session and router.
import '@mantine/core/styles.css';
import '@mantine/notifications/styles.css';
import { Badge, createTheme, localStorageColorSchemeManager, MantineProvider, type CSSVariablesResolver } from '@mantine/core';
import { Notifications } from '@mantine/notifications';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router';
import { App } from './app';
import { SessionProvider } from './session';

// Darker shades than Mantine's defaults, so text on buttons and dimmed text meet WCAG AA contrast (axe-core).
// Badges are light (tinted background, dark text in the light scheme).
const theme = createTheme({
  primaryColor: 'indigo',
  primaryShade: { light: 8, dark: 8 },
  defaultRadius: 'md',
  components: { Badge: Badge.extend({ defaultProps: { variant: 'light' } }) },
});
const TINTED = ['gray', 'red', 'orange', 'yellow', 'green', 'teal', 'blue', 'indigo'];
const cssVariablesResolver: CSSVariablesResolver = () => ({
  variables: {},
  light: {
    '--mantine-color-dimmed': 'var(--mantine-color-gray-7)',
    ...Object.fromEntries(
      TINTED.map((c) => [`--mantine-color-${c}-light-color`, `color-mix(in srgb, var(--mantine-color-${c}-9), black 30%)`]),
    ),
  },
  dark: { '--mantine-color-dimmed': 'var(--mantine-color-dark-1)' },
});
// No ColorSchemeScript: it is an inline script, which the CSP forbids; the scheme is applied as React mounts.
const colorSchemeManager = localStorageColorSchemeManager({ key: 'console-color-scheme' });

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <MantineProvider
      theme={theme}
      defaultColorScheme="auto"
      colorSchemeManager={colorSchemeManager}
      cssVariablesResolver={cssVariablesResolver}
    >
      <Notifications position="top-right" />
      <BrowserRouter>
        <SessionProvider>
          <App />
        </SessionProvider>
      </BrowserRouter>
    </MantineProvider>
  </StrictMode>,
);
